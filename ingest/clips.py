"""Cut a sequence into fixed-length clips and build one WebDataset sample per clip.

A sample is `<clip_id>.video.mp4`, `<clip_id>.human.npz` and `<clip_id>.meta.json`. The clip id
is derived from the source content and the span, so the same source always gives the same ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.manifest import stored_name
from ingest.sequence import HumanSequence
from ingest.video import encode_mp4, iter_frames
from robomirror import FORMAT_VERSION
from robomirror.atomic import digest_of, npz_bytes
from robomirror.errors import SourceError


@dataclass(frozen=True)
class ClipSpan:
    start: int  # first motion frame (inclusive)
    end: int  # last motion frame (exclusive)


@dataclass(frozen=True)
class ClipSample:
    key: str  # the clip id; every member name is f"{key}.{suffix}"
    members: dict[str, bytes]  # suffix -> bytes ("video.mp4", "human.npz", "meta.json")
    meta: dict


def cut_spans(n_frames: int, cfg: IngestConfig) -> list[ClipSpan]:
    """Full clips every `stride_frames`; a sequence shorter than a clip but at least
    `min_frames` long gives one short clip; shorter still gives none."""
    if n_frames < cfg.clip_frames:
        return [ClipSpan(0, n_frames)] if n_frames >= cfg.min_frames else []
    return [ClipSpan(s, s + cfg.clip_frames)
            for s in range(0, n_frames - cfg.clip_frames + 1, cfg.stride_frames)]


def clip_id(seq: HumanSequence, source_digest: str, span: ClipSpan) -> str:
    return digest_of([seq.ref.dataset, seq.ref.subset, seq.ref.sequence, source_digest,
                      span.start, span.end, seq.fps])[:20]


def texts_in_span(seq: HumanSequence, t0: float, t1: float) -> list[dict]:
    """Texts overlapping [t0, t1), with times relative to the clip start and overlap fraction."""
    out = []
    for tx in seq.texts:
        if tx.start_s is None:
            out.append({"kind": tx.kind, "text": tx.text, "start_s": None, "end_s": None, "overlap": 1.0})
            continue
        lo, hi = max(t0, tx.start_s), min(t1, tx.end_s)
        if hi > lo or (tx.start_s == tx.end_s and t0 <= tx.start_s < t1):
            dur = max(tx.end_s - tx.start_s, 1e-9)
            out.append({"kind": tx.kind, "text": tx.text, "start_s": round(tx.start_s - t0, 6),
                        "end_s": round(tx.end_s - t0, 6), "overlap": round(min(1.0, (hi - lo) / dur), 6)})
    return out


def clip_videos(seq: HumanSequence, spans: list[ClipSpan], cfg: IngestConfig) -> list[tuple[bytes, list[float]]]:
    """Decode the sequence video once and encode each clip's time span.

    Frames are streamed: only frames of clips still open are held, so memory does not grow
    with the sequence length. Returns (mp4 bytes, frame times relative to clip start) per span.
    """
    assert seq.video is not None
    bounds = [(seq.t0_s + s.start / seq.fps, seq.t0_s + s.end / seq.fps) for s in spans]
    pending: list[list[tuple[float, np.ndarray]]] = [[] for _ in spans]
    done: list[tuple[bytes, list[float]] | None] = [None] * len(spans)
    vfps = None
    last_t = None

    def finish(i: int) -> None:
        frames = pending[i]
        times = [round(t - bounds[i][0], 6) for t, _ in frames]
        fps_i = vfps or seq.fps
        _check_coverage(seq, bounds[i], [t for t, _ in frames], fps_i)
        done[i] = (encode_mp4([f for _, f in frames], fps_i, cfg.video_crf), times)
        pending[i] = []

    first_open = 0
    for t, frame in iter_frames(seq.video, cfg.video_size):
        if last_t is not None and vfps is None and t > last_t:
            vfps = round(1.0 / (t - last_t), 3)
        last_t = t
        eps = 0.25 / (vfps or seq.fps)
        while first_open < len(spans) and t >= bounds[first_open][1] - eps:
            finish(first_open)
            first_open += 1
        for i in range(first_open, len(spans)):
            lo, hi = bounds[i]
            if lo - eps <= t < hi - eps:
                pending[i].append((t, frame))
            elif t < lo - eps:
                break
    for i in range(first_open, len(spans)):
        finish(i)
    return done  # type: ignore[return-value]


def _check_coverage(seq: HumanSequence, bound: tuple[float, float], times: list[float], vfps: float) -> None:
    lo, hi = bound
    tol = 1.5 / vfps
    if not times or times[0] > lo + tol or times[-1] < hi - tol - 1.0 / vfps:
        have = f"[{times[0]:.3f}, {times[-1]:.3f}] s" if times else "no frames"
        raise SourceError(Reason.VIDEO_TRUNCATED, seq.video.path,
                          f"video must cover [{lo:.3f}, {hi:.3f}) s on the motion clock; it has {have}")


def build_samples(seq: HumanSequence, cfg: IngestConfig, sources: dict[str, dict]) -> list[ClipSample]:
    """All clip samples of one sequence. `sources`: role -> {"path", "sha256"}."""
    spans = cut_spans(seq.n_frames, cfg)
    if not spans:
        raise SourceError(Reason.TOO_SHORT, seq.ref.files[0][1],
                          f"{seq.n_frames} frames at {seq.fps} Hz; need at least min_frames={cfg.min_frames}")
    source_digest = digest_of(sorted((r, s["sha256"]) for r, s in sources.items()))
    spans, missing = _spans_with_video(seq, spans, cfg)
    # a motion-only sequence (Motion-X v1, mocap subsets) has no video member and a null video meta
    with_video = [s for s, m in zip(spans, missing, strict=True) if m is None] if seq.video is not None else []
    encoded = iter(clip_videos(seq, with_video, cfg) if with_video else [])
    videos = [next(encoded) if seq.video is not None and m is None else (None, None) for m in missing]
    samples = []
    for span, (mp4, vtimes), why in zip(spans, videos, missing, strict=True):
        key = clip_id(seq, source_digest, span)
        t0, t1 = seq.t0_s + span.start / seq.fps, seq.t0_s + span.end / seq.fps
        sl = slice(span.start, span.end)
        arrays = {
            "fps": np.float32(seq.fps),
            "joint_names": np.array(seq.joint_names),
            "joint_pos_w": seq.joint_pos_w[sl],
            "source_frame_index": seq.source_frame_index[sl],
            **{f"param_{k}": v[sl] for k, v in seq.params.items()},
        }
        video_meta = None
        if mp4 is not None:
            vfps = round(1.0 / np.median(np.diff(vtimes)), 3) if len(vtimes) > 1 else seq.fps
            video_meta = {"fps": vfps, "n_frames": len(vtimes), "timestamps_s": vtimes,
                          "size": [cfg.video_size, cfg.video_size], "resize": "stretch",
                          "source_kind": seq.video.kind}
        meta = {
            "format_version": FORMAT_VERSION, "clip_id": key,
            "dataset": seq.ref.dataset, "subset": stored_name(seq.ref.subset), "sequence": stored_name(seq.ref.sequence),
            "view": seq.view if mp4 is not None or seq.video is None else "motion_only",
            "fps": seq.fps, "n_frames": span.end - span.start,
            "start_frame": span.start, "end_frame": span.end,
            "start_s": round(t0, 6), "end_s": round(t1, 6),
            "source_fps": round(seq.source_fps, 6),
            "source_frame_start": float(seq.source_frame_index[span.start]),
            "source_frame_end": float(seq.source_frame_index[span.end - 1]),
            "texts": texts_in_span(seq, t0, t1),
            "video": video_meta,
            "sources": {r: {**sources[r], "path": stored_name(sources[r]["path"])} for r in sorted(sources)},
            "body_model": seq.body_model, "body_source": seq.body_source,
            "joint_frame": "world z-up, metres", "notes": seq.notes,
            "ingest_config": cfg.fingerprint(),
        }
        if seq.scene is not None:  # issue 22: only clips with a scene carry it (others keep their bytes)
            meta["scene"] = seq.scene.ref()
        if why is not None:  # only clips of a partly covered sequence carry it (others keep their bytes)
            meta["video_missing"] = why
        members = {
            "human.npz": npz_bytes(arrays),
            "meta.json": json.dumps(meta, sort_keys=True, indent=1).encode(),
        }
        if mp4 is not None:
            members["video.mp4"] = mp4
        samples.append(ClipSample(key, members, meta))
    return samples


def _spans_with_video(seq: HumanSequence, spans: list[ClipSpan],
                      cfg: IngestConfig) -> tuple[list[ClipSpan], list[str | None]]:
    """For a video that covers part of the motion (`seq.video_span_s`): the spans to build and, per
    span, None (inside: gets video) or why it has none (outside: motion-only). With
    `cfg.partial_video == "drop"` spans outside are left out. Like Nymeria's data_provider.py, only
    the overlap of the two time spans is used; a partial overlap never refuses the sequence."""
    if seq.video is None or seq.video_span_s is None:
        return spans, [None] * len(spans)
    v0, v1 = seq.video_span_s
    ts = seq.video.timestamps_s
    vfps = 1.0 / float(np.median(np.diff(ts))) if ts is not None and len(ts) > 1 else seq.fps
    tol = 1.5 / vfps  # as _check_coverage: a clip inside passes it
    missing: list[str | None] = []
    for s in spans:
        lo, hi = seq.t0_s + s.start / seq.fps, seq.t0_s + s.end / seq.fps
        inside = v0 <= lo + tol and v1 >= hi - tol - 1.0 / vfps
        missing.append(None if inside else f"outside the video: it covers [{v0:.3f}, {v1:.3f}] s on the motion "
                                            f"clock, the clip is [{lo:.3f}, {hi:.3f}) s")
    if cfg.partial_video == "drop":
        kept = [s for s, m in zip(spans, missing, strict=True) if m is None]
        if not kept:
            raise SourceError(Reason.VIDEO_TRUNCATED, seq.video.path,
                              f"no clip lies inside the video ([{v0:.3f}, {v1:.3f}] s on the motion clock) and "
                              f"partial_video='drop' leaves out clips outside it; {missing[0]}")
        return kept, [None] * len(kept)
    return spans, missing
