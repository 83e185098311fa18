"""Nymeria as users download it: each combination of data groups gives what it can (first ingests).

Fixtures: tests/ingest/nymeria_fixtures.py (the public layout, not our sample generator).
"""

from __future__ import annotations

import numpy as np
import pytest

import ingest.nymeria_clock as nymeria_clock
from ingest.body_model import BuiltinSkeleton
from ingest.clips import build_samples
from ingest.config import IngestConfig
from ingest.nymeria import discover_nymeria, read_nymeria
from ingest.stage import hash_sources
from robomirror.errors import SourceError
from tests.ingest.nymeria_fixtures import BODY_START_S, Download, write_sequence

CFG = IngestConfig(video_size=32)
BODY = BuiltinSkeleton("smpl")


def _build(tmp_path, dl: Download, cfg: IngestConfig = CFG, name: str = "20230607_s0_jane_doe_act0_abc123"):
    write_sequence(tmp_path, name, dl)
    ref = discover_nymeria(tmp_path)[0]
    assert ref.problem is None
    seq = read_nymeria(ref, BODY, cfg)
    return seq, build_samples(seq, cfg, hash_sources(ref))


# (download, view of every clip, texts placed, what the meta says about text)
COMBINATIONS = {
    "body_raw": (Download(), "motion_only", False, "none"),
    "body_processed": (Download(body_raw=False, body_processed=True), "motion_only", False, "none"),
    "body+narration": (Download(narration=True), "motion_only", False, "not placed"),
    "body+narration+timesync": (Download(narration=True, timesync=True), "motion_only", True, "narration"),
    "body+head_rgb": (Download(head_rgb=True), "egocentric", False, "none"),
    "body+narration+head_rgb": (Download(body_processed=True, narration=True, head_rgb=True), "egocentric", True,
                                "narration"),
}


@pytest.mark.parametrize("combo", sorted(COMBINATIONS))
def test_each_download_combination_gives_what_it_holds(tmp_path, combo):
    dl, view, placed, text_note = COMBINATIONS[combo]
    seq, samples = _build(tmp_path, dl)
    assert len(samples) == 3  # 15 s of body: three 5 s clips, whatever else is there
    assert {s.meta["view"] for s in samples} == {view}
    assert all(("video.mp4" in s.members) == (view != "motion_only") == (s.meta["video"] is not None)
               for s in samples)
    assert text_note in seq.notes["modalities"]["text"]
    assert seq.notes["modalities"]["body"] == ("smpl_neutral" if dl.body_processed else "xsens")
    if placed:
        first = samples[0].meta["texts"]
        walk = [t for t in first if t["text"] == "C walks forward"]
        # written 0.2 s after the body start in head device seconds, read back on the motion clock
        assert len(walk) == 1 and abs(walk[0]["start_s"] - 0.2) < 1e-3
        assert all(t["kind"] in ("atomic_action", "activity_summarization") for t in first)  # not annotator etc.
    else:
        assert all(s.meta["texts"] == [] for s in samples)


def test_no_body_is_a_ledger_refusal(tmp_path):
    with pytest.raises(SourceError) as e:
        _build(tmp_path, Download(body_raw=False, narration=True, head_rgb=True))
    assert e.value.reason == "missing_file" and "no body motion" in e.value.detail


def test_head_recording_covering_part_of_the_body(tmp_path):
    """Head video over [4.9, 10.2] s of a 15 s body: only the middle clip lies inside it."""
    dl = Download(narration=True, head_rgb=True, head_from_s=4.9, head_to_s=10.2)
    seq, samples = _build(tmp_path, dl)
    assert [s.meta["view"] for s in samples] == ["motion_only", "egocentric", "motion_only"]
    for s in (samples[0], samples[2]):
        assert "outside the video" in s.meta["video_missing"] and "video.mp4" not in s.members
        assert s.meta["texts"]  # narration still placed: the head clock is there
    inside = samples[1].meta
    assert "video_missing" not in inside
    ts = inside["video"]["timestamps_s"]
    assert ts[0] < 1 / 15 + 1e-6 and ts[-1] > 5 - 2 / 15 and all(0 <= t < 5 for t in ts)
    # with the flag, the clips outside are dropped; the one inside is the same clip
    _, dropped = _build(tmp_path / "drop", dl, IngestConfig(video_size=32, partial_video="drop"))
    assert [(s.meta["start_frame"], s.meta["view"]) for s in dropped] == [(150, "egocentric")]


def test_head_recording_that_starts_before_and_ends_after_the_body(tmp_path):
    seq, samples = _build(tmp_path, Download(head_rgb=True, head_from_s=-30.0, head_to_s=40.0))
    assert seq.video_span_s[0] < seq.t0_s and seq.video_span_s[1] > seq.t0_s + seq.n_frames / seq.fps
    for s in samples:  # each clip gets exactly its own 5 s of frames at 15 fps
        ts = s.meta["video"]["timestamps_s"]
        assert s.meta["view"] == "egocentric" and len(ts) == 75
        assert abs(ts[0]) < 1 / 15 and all(0 <= t < 5 for t in ts)


def test_xdata_header_is_used_for_the_source_rate(tmp_path):
    """source_fps is the file's frameRate (240), not 1/median of whole-us steps (239.98)."""
    seq, samples = _build(tmp_path, Download())
    assert seq.source_fps == 240.0 and samples[0].meta["source_fps"] == 240.0
    assert seq.notes["xsens_header"] == {"frame_rate_hz": 240.0, "frame_count": 3600, "segment_count": 23,
                                         "assumed": []}
    smpl, _ = _build(tmp_path / "smpl", Download(body_processed=True))  # SMPL rate taken from xdata.npz
    assert smpl.source_fps == 240.0 and smpl.t0_s == pytest.approx(BODY_START_S, abs=1e-6)
    alone, _ = _build(tmp_path / "alone", Download(body_raw=False, body_processed=True))
    assert alone.source_fps == pytest.approx(240.0, abs=1e-3)  # over the whole span, not the median step


@pytest.mark.parametrize("header, says", [
    ({"frameRate": np.float64(120.0)}, "frameRate is 120 Hz but timestamps_us run at 240"),
    ({"frameCount": np.int64(3599)}, "frameCount is 3599 but timestamps_us has 3600 frames"),
    ({"segmentCount": np.int64(22)}, "segmentCount is 22"),
    ({"frameRate": np.array([240.0, 240.0])}, "frameRate: expected one finite number"),
])
def test_a_header_that_disagrees_with_the_data_is_refused(tmp_path, header, says):
    with pytest.raises(SourceError) as e:
        _build(tmp_path, Download(header=header))
    assert e.value.reason == "header_mismatch" and says in e.value.detail


def test_a_header_key_that_is_absent_is_assumed_and_said(tmp_path):
    seq_dir = write_sequence(tmp_path, "20230607_s0_jane_doe_act0_abc123", Download())
    z = dict(np.load(seq_dir / "body" / "xdata.npz"))
    del z["segmentCount"], z["frameRate"]
    np.savez(seq_dir / "body" / "xdata.npz", **z)
    seq = read_nymeria(discover_nymeria(tmp_path)[0], BODY, CFG)
    assert seq.source_fps == 240.0 and seq.notes["xsens_header"]["assumed"] == ["frameRate", "segmentCount"]


def test_motion_vrs_gives_the_head_clock(tmp_path, monkeypatch):
    """A real `timesync_and_imu` download: recording_head/data/motion.vrs, read through projectaria-tools
    on its IMU stream (a handful of samples of the map), places the narrations."""
    seq_dir = write_sequence(tmp_path, "20230607_s0_jane_doe_act0_abc123", Download(narration=True, timesync=True))
    standin = nymeria_clock.read_standin_clock(str(seq_dir / "recording_head" / "motion_timesync_ns.csv"))
    (seq_dir / "recording_head" / "motion_timesync_ns.csv").unlink()
    (seq_dir / "recording_head" / "data").mkdir()
    (seq_dir / "recording_head" / "data" / "motion.vrs").write_bytes(b"vrs")
    calls = []

    def fake_vrs_clock(path, stream, max_samples=None):
        calls.append((path, stream, max_samples))
        return standin

    monkeypatch.setattr(nymeria_clock, "read_vrs_clock", fake_vrs_clock)
    ref = discover_nymeria(tmp_path)[0]
    assert dict(ref.files)["timesync"].endswith("recording_head/data/motion.vrs")
    seq = read_nymeria(ref, BODY, CFG)
    assert calls == [(dict(ref.files)["timesync"], nymeria_clock.ARIA_IMU_STREAM, nymeria_clock.MAX_TIMESYNC_SAMPLES)]
    assert seq.view == "motion_only" and seq.video is None and seq.notes["head_clock_file"] == "motion.vrs"
    assert any(abs(t.start_s - (BODY_START_S + 0.2)) < 1e-3 for t in seq.texts)
