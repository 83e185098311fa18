"""sample -> shards -> read back with webdataset: the shards hold exactly the source slices."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import webdataset as wds

from ingest.body_model import BuiltinSkeleton
from ingest.motionx import MOTIONX_COLUMNS, zup_rotation
from ingest.nymeria import head_clock, read_narrations
from ingest.video import decode_mp4_bytes


def _read_all(layout, dataset):
    urls = sorted(str(p) for p in layout.shard_dir("ingest", dataset).glob("shard-*.tar"))
    ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    return list(ds)


def test_counts_and_keys_match_manifest(ingested):
    layout, summary = ingested
    assert summary.failed == 0
    for dataset in ("motionx", "nymeria"):
        samples = _read_all(layout, dataset)
        manifest = pq.read_table(layout.manifest("ingest", dataset)).to_pylist()
        assert len(samples) == len(manifest) > 0
        assert [s["__key__"] for s in samples] == [r["clip_id"] for r in manifest]
        for s in samples:
            meta = json.loads(s["meta.json"])
            assert {"human.npz", "meta.json"} <= set(s)
            # motion-only Motion-X clips (v1, mocap subsets) carry no video member
            assert ("video.mp4" in s) == (meta["view"] != "motion_only") == (meta["video"] is not None)
    assert summary.per_dataset["motionx"].shards >= 2  # the small shard size forced several


def test_motionx_arrays_equal_source_slices_in_zup(ingested, small_sample):
    layout, _ = ingested
    body = BuiltinSkeleton("smplx")
    seen = set()
    for s in _read_all(layout, "motionx"):
        meta = json.loads(s["meta.json"])
        human = np.load(io.BytesIO(s["human.npz"]), allow_pickle=False)
        up = meta["notes"]["source_up_axis"]
        seen.add((meta["subset"], meta["notes"]["layout"], up, round(meta["source_fps"], 2)))
        if abs(meta["source_fps"] - 30.0) < 1e-6:  # no resampling: arrays are the source's own
            src = np.load(meta["sources"]["motion"]["path"])[meta["start_frame"]:meta["end_frame"]]
            a, b = MOTIONX_COLUMNS["pose_body"]
            np.testing.assert_allclose(human["param_pose_body"], src[:, a:b], atol=1e-6)
            c = {k: src[:, i:j] for k, (i, j) in MOTIONX_COLUMNS.items()}
            joints_src = body.joints(c["root_orient"], c["pose_body"], c["trans"], c["betas"], c["pose_hand"], c["pose_jaw"])
            np.testing.assert_allclose(human["joint_pos_w"], joints_src @ zup_rotation(up).T, atol=1e-5)
        else:  # humanml from a 100 Hz source: 33.3 fps resampled onto the 30 Hz clip clock
            np.testing.assert_allclose(np.diff(human["source_frame_index"]), meta["source_fps"] / 30.0, atol=1e-6)
        # z-up whatever the source axis: the body stands on z = 0 and its head is above its pelvis
        assert human["joint_pos_w"][..., 2].min() > -0.05
        assert np.all(human["joint_pos_w"][:, 15, 2] > human["joint_pos_w"][:, 0, 2])
        # converted root parameters reproduce the z-up joints through the same body model
        j2 = body.joints(human["param_root_orient"], human["param_pose_body"], human["param_trans"],
                         human["param_betas"], human["param_pose_hand"], human["param_pose_jaw"])
        np.testing.assert_allclose(j2, human["joint_pos_w"], atol=1e-4)
        assert human["joint_pos_w"].shape[0] == meta["n_frames"] == meta["end_frame"] - meta["start_frame"]
        assert meta["texts"] and all(t["kind"] == "semantic_label" for t in meta["texts"])
        assert all("#" not in t["text"] and "/NOUN" not in t["text"] for t in meta["texts"])  # no POS tags
        assert "neutral" in meta["notes"]["gender"]
    # the sample's quirks all reached the shards: both layouts, a z-up subset, a 33.3 fps sequence
    assert {x[1] for x in seen} == {"motionx_v1", "motionx++"}
    assert ("GRAB", "motionx++", "+z", 30.0) in seen
    assert ("humanml", "motionx_v1", "+y", 33.33) in seen


def test_humanml_captions_keep_their_own_spans(ingested):
    layout, _ = ingested
    spans = [t for s in _read_all(layout, "motionx") if json.loads(s["meta.json"])["subset"] == "humanml"
             for t in json.loads(s["meta.json"])["texts"]]
    whole = [t for t in spans if t["start_s"] is None]
    timed = [t for t in spans if t["start_s"] is not None]
    assert whole and timed  # `#0.0#0.0` is the whole clip, `#0.0#<to>` a span
    assert all(t["start_s"] == 0.0 and t["end_s"] > 0 for t in timed)


def test_video_covers_the_clip_span(ingested):
    layout, _ = ingested
    seen_fps = set()
    for dataset in ("motionx", "nymeria"):
        for s in _read_all(layout, dataset):
            meta = json.loads(s["meta.json"])
            if "video.mp4" not in s:  # a motion-only Motion-X clip
                assert meta["video"] is None and meta["view"] == "motion_only"
                continue
            # Motion-X videos are 30 Hz; Nymeria head RGB is 30 Hz in most recordings, 15 in some
            vfps = 30.0 if dataset == "motionx" else meta["notes"]["video_fps"]
            seen_fps.add((dataset, vfps))
            frames, times, fps = decode_mp4_bytes(s["video.mp4"])
            assert fps == vfps == meta["video"]["fps"]
            assert len(frames) == meta["video"]["n_frames"] == round(meta["n_frames"] / meta["fps"] * vfps)
            assert frames.shape[1:] == (128, 128, 3)
            assert all(0 <= t < meta["end_s"] - meta["start_s"] for t in meta["video"]["timestamps_s"])
    assert {("nymeria", 30.0), ("nymeria", 15.0)} <= seen_fps


def test_nymeria_texts_aligned_with_clip_time(ingested, small_sample):
    layout, _ = ingested
    samples = _read_all(layout, "nymeria")
    assert samples
    for s in samples:
        meta = json.loads(s["meta.json"])
        seq_dir = small_sample["nymeria"] / meta["sequence"]
        files = {f"narration:{n}": str(seq_dir / "narration" / f"{n}.csv")
                 for n in ("motion_narration", "atomic_action", "activity_summarization")}
        clock = head_clock({"video": str(seq_dir / "recording_head" / "rgb.mp4"),
                            "video_timestamps": str(seq_dir / "recording_head" / "rgb_timestamps_ns.csv"),
                            "timesync": str(seq_dir / "recording_head" / "motion_timesync_ns.csv")})
        spans = read_narrations(files, clock)
        expected = sorted((t.kind, t.text) for t in spans
                          if min(t.end_s, meta["end_s"]) > max(t.start_s, meta["start_s"]))
        assert sorted((t["kind"], t["text"]) for t in meta["texts"]) == expected
        for t in meta["texts"]:  # times are relative to the clip start
            assert t["end_s"] > 0 and t["start_s"] < meta["end_s"] - meta["start_s"]
        # the sample's sequence without head video: motion-only clips, narrations still placed
        has_video = (seq_dir / "recording_head" / "rgb.mp4").is_file()
        assert meta["view"] == ("egocentric" if has_video else "motion_only") and meta["body_source"] == "smpl_neutral"
        human = np.load(io.BytesIO(s["human.npz"]))
        assert human["joint_pos_w"].shape == (meta["n_frames"], 24, 3)
        assert human["param_xsens_segment_pos_w"].shape == (meta["n_frames"], 23, 3)
        # 240 Hz source: consecutive 30 Hz frames are 8 source frames apart
        np.testing.assert_allclose(np.diff(human["source_frame_index"]), 8.0, atol=1e-3)  # us-rounded stamps
