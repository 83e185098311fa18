"""sample -> shards -> read back with webdataset: the shards hold exactly the source slices."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import webdataset as wds

from ingest.body_model import BuiltinSkeleton
from ingest.motionx import MOTIONX_COLUMNS
from ingest.nymeria import read_narrations
from ingest.video import decode_mp4_bytes
from robomirror.rotations import R_ZUP_FROM_YUP


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
            assert {"video.mp4", "human.npz", "meta.json"} <= set(s)
    assert summary.per_dataset["motionx"].shards >= 2  # the small shard size forced several


def test_motionx_arrays_equal_source_slices_in_zup(ingested, small_sample):
    layout, _ = ingested
    body = BuiltinSkeleton("smplx")
    for s in _read_all(layout, "motionx"):
        meta = json.loads(s["meta.json"])
        human = np.load(io.BytesIO(s["human.npz"]), allow_pickle=False)
        src = np.load(meta["sources"]["motion"]["path"])[meta["start_frame"]:meta["end_frame"]]
        a, b = MOTIONX_COLUMNS["pose_body"]
        np.testing.assert_allclose(human["param_pose_body"], src[:, a:b], atol=1e-6)
        c = {k: src[:, i:j] for k, (i, j) in MOTIONX_COLUMNS.items()}
        joints_yup = body.joints(c["root_orient"], c["pose_body"], c["trans"], c["betas"], c["pose_hand"], c["pose_jaw"])
        np.testing.assert_allclose(human["joint_pos_w"], joints_yup @ R_ZUP_FROM_YUP.T, atol=1e-5)
        # z-up: the body stands on z = 0 and its head is above its pelvis
        assert human["joint_pos_w"][..., 2].min() > -0.05
        assert np.all(human["joint_pos_w"][:, 15, 2] > human["joint_pos_w"][:, 0, 2])
        # converted root parameters reproduce the z-up joints through the same body model
        j2 = body.joints(human["param_root_orient"], human["param_pose_body"], human["param_trans"],
                         human["param_betas"], human["param_pose_hand"], human["param_pose_jaw"])
        np.testing.assert_allclose(j2, human["joint_pos_w"], atol=1e-4)
        assert human["joint_pos_w"].shape[0] == meta["n_frames"] == meta["end_frame"] - meta["start_frame"]
        assert meta["texts"] and meta["texts"][0]["kind"] == "semantic_label"


def test_video_covers_the_clip_span(ingested):
    layout, _ = ingested
    for dataset, vfps in (("motionx", 30.0), ("nymeria", 15.0)):
        for s in _read_all(layout, dataset):
            meta = json.loads(s["meta.json"])
            frames, times, fps = decode_mp4_bytes(s["video.mp4"])
            assert fps == vfps == meta["video"]["fps"]
            assert len(frames) == meta["video"]["n_frames"] == round(meta["n_frames"] / meta["fps"] * vfps)
            assert frames.shape[1:] == (128, 128, 3)
            assert all(0 <= t < meta["end_s"] - meta["start_s"] for t in meta["video"]["timestamps_s"])


def test_nymeria_texts_aligned_with_clip_time(ingested, small_sample):
    layout, _ = ingested
    samples = _read_all(layout, "nymeria")
    assert samples
    for s in samples:
        meta = json.loads(s["meta.json"])
        seq_dir = small_sample["nymeria"] / meta["sequence"]
        files = {f"narration:{n}": str(seq_dir / "narration" / f"{n}.csv")
                 for n in ("motion_narration", "atomic_action", "activity_summarization")}
        spans = read_narrations(files, 0.0)
        expected = sorted((t.kind, t.text) for t in spans
                          if min(t.end_s, meta["end_s"]) > max(t.start_s, meta["start_s"]))
        assert sorted((t["kind"], t["text"]) for t in meta["texts"]) == expected
        for t in meta["texts"]:  # times are relative to the clip start
            assert t["end_s"] > 0 and t["start_s"] < meta["end_s"] - meta["start_s"]
        assert meta["view"] == "egocentric" and meta["body_source"] == "smpl_neutral"
        human = np.load(io.BytesIO(s["human.npz"]))
        assert human["joint_pos_w"].shape == (meta["n_frames"], 24, 3)
        assert human["param_xsens_segment_pos_w"].shape == (meta["n_frames"], 23, 3)
        # 240 Hz source: consecutive 30 Hz frames are 8 source frames apart
        np.testing.assert_allclose(np.diff(human["source_frame_index"]), 8.0, atol=1e-3)  # us-rounded stamps
