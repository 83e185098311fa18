"""Nymeria's clocks, narrations and repairs, checked against what the official loader does."""

from __future__ import annotations

import numpy as np
import pytest

import ingest.nymeria as nymeria
from ingest.body_model import BuiltinSkeleton
from ingest.clips import build_samples
from ingest.config import IngestConfig
from ingest.nymeria import discover_nymeria, read_nymeria
from ingest.nymeria_clock import HeadClock
from ingest.timestamps import repair_quaternions_wxyz, repair_timestamps_us
from robomirror.errors import SourceError

SRC = {"x": {"path": "p", "sha256": "0"}}


def test_clips_need_the_device_to_timecode_conversion(small_sample, monkeypatch):
    """Taking capture_timestamp_ns (device time) as the motion clock loses every clip's video."""
    ref = discover_nymeria(small_sample["nymeria"])[0]
    body = BuiltinSkeleton("smpl")
    seq = read_nymeria(ref, body, IngestConfig())
    good = build_samples(seq, IngestConfig(), SRC)  # converted: clips are cut, all with video
    assert good and all(s.meta["view"] == "egocentric" and "video.mp4" in s.members for s in good)
    real = nymeria.head_clock
    monkeypatch.setattr(nymeria, "head_clock", lambda f: HeadClock(real(f).device_ns, real(f).device_ns))
    wrong = read_nymeria(ref, body, IngestConfig())
    # the video now lies ~940 s away from the body: no clip is inside it, so none carries video
    # (never a refusal of the whole sequence), and each clip says why
    bad = build_samples(wrong, IngestConfig(), SRC)
    assert len(bad) == len(good)
    assert all(s.meta["view"] == "motion_only" and "outside the video" in s.meta["video_missing"] for s in bad)
    with pytest.raises(SourceError) as e:  # unless asked to drop such clips: then nothing is left
        build_samples(wrong, IngestConfig(partial_video="drop"), SRC)
    assert e.value.reason == "video_truncated" and "no clip lies inside" in e.value.detail
    # and the narrations, on the head device clock, miss the body span entirely
    assert all(t.end_s < wrong.t0_s for t in wrong.texts)
    assert any(seq.t0_s <= t.start_s < seq.t0_s + seq.n_frames / seq.fps for t in seq.texts)


def test_offset_differs_per_recording_and_is_recorded(small_sample):
    metas = [read_nymeria(r, BuiltinSkeleton("smpl"), IngestConfig()).notes
             for r in discover_nymeria(small_sample["nymeria"])]
    offsets = {round(n["head_device_to_timecode_offset_s"], 3) for n in metas}
    assert len(offsets) == len(metas) >= 2  # one global offset could not express this
    assert {n.get("video_fps") for n in metas} == {30.0, 15.0, None}  # None: the one without head video
    no_video = [n for n in metas if "video_fps" not in n]
    assert len(no_video) == 1 and no_video[0]["head_clock_file"] == "motion_timesync_ns.csv"
    assert no_video[0]["modalities"] == {"body": "smpl_neutral", "text": "narration", "video": "none"}
    for n in metas:  # the sample's bad steps and dropped quaternion were repaired, and said so
        assert n["repairs"]["smpl_timestamp_steps"] > 0 and n["repairs"]["xsens_quaternions"] == 1


def test_four_motion_narration_columns_each_kept(small_sample):
    seq = read_nymeria(discover_nymeria(small_sample["nymeria"])[0], BuiltinSkeleton("smpl"), IngestConfig())
    kinds = {t.kind for t in seq.texts}
    assert {"motion_narration:posture", "motion_narration:hands_arms", "motion_narration:legs_feet",
            "motion_narration:focus_attention", "atomic_action", "activity_summarization"} <= kinds


def test_timestamp_repair_as_the_official_loader():
    nominal = 1e6 / 240
    t = np.round(np.arange(1000) * nominal)
    glitch = t.copy()
    glitch[300] = glitch[299]  # a duplicated stamp
    glitch[600] += 3000  # a 3 ms glitch
    fixed, n = repair_timestamps_us(glitch, nominal, "f", "timestamps_us")
    assert n == 4 and np.all(np.diff(fixed) > 0) and abs(fixed[-1] - t[-1]) < 10_000
    jump = t.copy()
    jump[500:] -= 1e6  # a 1 s jump back cannot be repaired within 10 ms: refused with the reason
    with pytest.raises(SourceError) as e:
        repair_timestamps_us(jump, nominal, "f", "timestamps_us")
    assert e.value.reason == "non_monotonic_time" and "10 ms" in e.value.detail
    clean, n0 = repair_timestamps_us(t, nominal, "f", "timestamps_us")
    assert n0 == 0 and np.array_equal(clean, t)


def test_dropped_quaternions_hold_the_previous_frame():
    q = np.tile(np.array([0.0, 1.0, 0.0, 0.0]), (5, 2, 1))
    q[0, 1] = 0.0  # first frame: identity
    q[3, 0] = (0.3, 0.0, 0.0, 0.0)  # norm 0.3 < 0.5: held from frame 2
    fixed, n = repair_quaternions_wxyz(q)
    assert n == 2
    np.testing.assert_allclose(fixed[0, 1], (1, 0, 0, 0))
    np.testing.assert_allclose(fixed[3, 0], fixed[2, 0])


def test_up_axis_is_y_and_a_disagreeing_body_only_warns(small_sample):
    ref = discover_nymeria(small_sample["nymeria"])[0]
    with pytest.warns(UserWarning, match="up axis"):
        seq = read_nymeria(ref, BuiltinSkeleton("smpl"), IngestConfig(nymeria_up_axis="z"))
    assert "up_axis_warning" in seq.notes and seq.notes["source_up_axis"] == "z"
