"""Nearest-latent retrieval over the store, for debugging: which clips does the model think are alike?

A query is a clip already in the store (`--clip`), a sentence (`--text`, text space) or a video
file (`--video`, embedded by the same VLM that built the store's video latents).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout

SPACES = {"motion": "motion_latent", "video": "video_latent", "text": "text_emb"}


class NearestError(RoboMirrorError):
    """The query cannot be answered (unknown clip, space without an encoder for this query, ...)."""


@dataclass(frozen=True)
class Query:
    kind: str  # "clip" | "text" | "video"
    value: str  # the clip id, the sentence or the video path
    space: str
    view: str | None = None  # for a video query: which prompt embedded it


@dataclass(frozen=True)
class Neighbour:
    clip_id: str
    distance: float  # cosine distance, 0 = same direction
    text: str
    dataset: str
    view: str
    stable: bool | None
    mpkpe_aligned_mean_m: float | None
    texts: tuple[str, ...] = ()  # every text of the clip, "kind: text"


def _neighbour(r: dict, distance: float) -> Neighbour:
    """A store row as a Neighbour."""
    entries = json.loads(r.get("texts_json") or "[]")
    texts = tuple(f"{e.get('kind', '').replace('_', ' ')}: {e.get('text', '')}" if isinstance(e, dict) else str(e)
                  for e in entries)
    return Neighbour(r["clip_id"], distance, r.get("text") or "", r.get("dataset") or "", r.get("view") or "",
                     r.get("stable"), r.get("mpkpe_aligned_mean_m"), texts)


def _clip_row(table, clip: str) -> dict | None:
    safe = clip.replace("'", "")
    rows = table.search().where(f"clip_id = '{safe}'").limit(1).to_list()
    return rows[0] if rows else None


def _store_vlm_id(table) -> str:
    rows = table.search().where("vlm_id IS NOT NULL").select(["vlm_id"]).limit(1).to_list()
    if not rows:
        raise NearestError("the store has no video latents (no clip had a video)")
    return rows[0]["vlm_id"]


def _embed_video_file(layout: DataLayout, path: Path, view: str, vlm: str | None, table) -> tuple[np.ndarray, np.ndarray]:
    """(video tokens (n, D) float16, pooled (D,)) of a file, by the store's own VLM."""
    from ingest.video import decode_mp4_bytes
    from latents.video import VideoClip, embed_videos, load_vlm, resolve_vlm_dir

    if not path.is_file():
        raise NearestError(f"--video {path}: no such file")
    try:
        frames, _, fps = decode_mp4_bytes(path.read_bytes())
    except Exception as e:  # noqa: BLE001 - any container/codec error is the file's
        raise NearestError(f"--video {path}: cannot decode it as a video ({type(e).__name__}: {e})") from e
    built_with = _store_vlm_id(table)
    if vlm is None and built_with.startswith("effnet-lite0"):  # the store says which encoder it used
        vlm = "effnet-lite0"
    model = load_vlm(str(resolve_vlm_dir(vlm, layout.root / "cache" / "vlm")))
    if model.vlm_id != built_with:
        raise NearestError(f"the store's video latents come from {built_with}, but the VLM given is {model.vlm_id}; "
                           "pass --vlm with the directory the store was built with")
    return embed_videos(model, [VideoClip(frames, fps, view)])[0]


def _store_vae_id(table) -> str:
    rows = table.search().select(["vae_id"]).limit(1).to_list()
    return rows[0]["vae_id"] if rows else ""


def find_dit_run(layout: DataLayout, vae_id: str, vlm_id: str, run: str | None = None) -> Path:
    """The training run whose DiT speaks this store's latents: `run` (an id or folder) or the newest one
    trained on the same VAE and video encoder. Anything else is refused: its latents mean nothing here."""
    import json as _json

    runs = layout.root / "runs" / "train"
    if run is not None:
        candidates = [Path(run) if Path(run).is_dir() else runs / run]
    else:
        candidates = sorted((p.parent for p in runs.glob("*/run.json")), key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        raise NearestError(f"no trained DiT under {runs}; run `make train` (python -m train run) first")
    for c in candidates:
        meta_path = c / "run.json"
        if not meta_path.is_file():
            raise NearestError(f"{c} is not a training run (no run.json)")
        meta = _json.loads(meta_path.read_text())
        if meta.get("method", "dit") != "dit":
            if run is not None:
                raise NearestError(f"run {c.name} trained the {meta.get('method')} baseline, not a DiT")
            continue
        if meta.get("vae_id") == vae_id and meta.get("vlm_id") == vlm_id:
            return c
        if run is not None:
            raise NearestError(f"the DiT of run {c.name} was trained on VAE {meta.get('vae_id')} and video encoder "
                               f"{meta.get('vlm_id')}, but the store holds {vae_id} and {vlm_id}: retrain it "
                               "(`make train`) on this store")
    raise NearestError(f"no DiT under {runs} was trained on this store's VAE {vae_id} and video encoder {vlm_id}; "
                       "run `make train`")


def video_to_motion_latent(layout: DataLayout, tokens: np.ndarray, pooled: np.ndarray, table,
                           run: str | None = None) -> np.ndarray:
    """VLM latent -> DiT (2 Euler steps) -> pooled motion latent (D_m,), comparable to `motion_latent`."""
    import torch

    from robomirror.dit import load_trained, reconstruct

    run_dir = find_dit_run(layout, _store_vae_id(table), _store_vlm_id(table), run)
    model, flow, meta = load_trained(run_dir)
    t_m, d_m = model.dit.cfg.motion_tokens, model.dit.cfg.motion_dim
    video = torch.from_numpy(np.asarray(tokens, dtype=np.float32))[None]
    batch = {"clip_id": ["query"], "motion_tokens": torch.zeros(1, t_m, d_m),
             "motion_mask": torch.ones(1, t_m, dtype=torch.bool), "video_tokens": video,
             "video_mask": torch.ones(1, video.shape[1], dtype=torch.bool),
             "video_latent": torch.from_numpy(np.asarray(pooled, dtype=np.float32))[None]}
    out = reconstruct(model, batch, flow, seed=meta["config"]["seed"])
    return out[0].mean(0).numpy()


def nearest(layout: DataLayout, clip: str | None = None, text: str | None = None, space: str = "motion",
            k: int = 5, where: str | None = None, video: str | Path | None = None, view: str = "third_person",
            vlm: str | None = None, dit_run: str | None = None) -> list[Neighbour]:
    from latents.store import CLIPS, Store

    if space not in SPACES:
        raise NearestError(f"--space must be one of {sorted(SPACES)}, got {space!r}")
    if sum(q is not None for q in (clip, text, video)) != 1:
        raise NearestError("give exactly one of --clip ID, --text \"...\" or --video FILE")
    if not (layout.store_dir).exists():
        raise NearestError(f"no store under {layout.root}; run `make latents` first")
    from catalog.sql import mixed_models

    mixed = mixed_models(layout)
    if mixed:  # distances between latents of two models mean nothing
        raise NearestError(f"the store mixes model generations ({mixed}); rebuild it with "
                           "`python -m latents build --prune`")
    table = Store(layout.store_dir).table(CLIPS)
    col = SPACES[space]
    if clip is not None:
        row = _clip_row(table, clip)
        if row is None:
            raise NearestError(f"clip {clip!r} is not in the store; try: python -m catalog sql "
                               "\"SELECT clip_id, text FROM store_clips LIMIT 5\"")
        if row[col] is None:
            raise NearestError(f"clip {clip!r} has no {col} (it has no video)")
        vec = np.asarray(row[col], dtype=np.float32)
    elif text is not None:
        if space != "text":
            raise NearestError("a text query needs --space text (text -> motion needs the DiT of a later issue)")
        from latents.text import embed_texts

        vec = embed_texts([text])[0]
    else:
        if space == "text":
            raise NearestError("a video query needs --space video (VLM latents) or --space motion (VLM -> DiT)")
        tokens, pooled = _embed_video_file(layout, Path(video), view, vlm, table)
        vec = pooled if space == "video" else video_to_motion_latent(layout, tokens, pooled, table, dit_run)
    q = table.search(vec, vector_column_name=col).metric("cosine").limit(k + (clip is not None))
    filters = [f"({where})"] if where else []
    if space == "video":
        filters.append("video_latent IS NOT NULL")
    if filters:
        q = q.where(" AND ".join(filters), prefilter=True)
    return [_neighbour(r, float(r["_distance"])) for r in q.to_list() if r["clip_id"] != clip][:k]


def describe(layout: DataLayout, clip: str) -> Neighbour | None:
    """A store clip as a Neighbour at distance 0 (the query card of the HTML page)."""
    from latents.store import CLIPS, Store

    row = _clip_row(Store(layout.store_dir).table(CLIPS), clip)
    return None if row is None else _neighbour(row, 0.0)
