"""The sample corpus: deterministic bytes, the real layouts, videos that depend on the motion."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ingest.sample.corpus import SampleConfig, build_sample
from ingest.sample.motions import KINDS, Segment, generate
from ingest.video import decode_mp4_bytes

TINY = SampleConfig(seed=3, n_motionx=2, n_nymeria=1, max_seconds=4.0)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _digests(build_sample(tmp_path / "a", TINY, progress=False)["motionx"].parent)
    b = _digests(build_sample(tmp_path / "b", TINY, progress=False)["motionx"].parent)
    c = _digests(build_sample(tmp_path / "c", SampleConfig(seed=4, n_motionx=2, n_nymeria=1, max_seconds=4.0),
                              progress=False)["motionx"].parent)
    assert a == b
    assert a != c
    assert any(k.startswith("motionx/motion_data/smplx_322/") and k.endswith(".npy") for k in a)
    assert any(k.endswith("body/xdata_smpl_neutral.npz") for k in a)
    assert any(k.endswith("narration/atomic_action.csv") for k in a)


def test_all_kinds_stay_on_the_ground_with_plausible_height():
    for kind in KINDS:
        p = generate([Segment(kind, 3.0, 1.0)], 30.0, beta0=0.0)
        assert np.all(np.isfinite(p["trans"]))
        assert 0.7 < p["trans"][:, 1].mean() < 1.1, kind  # pelvis height [m], y-up


def test_videos_depend_on_the_motion(small_sample):
    vids = sorted((small_sample["motionx"] / "video").rglob("*.mp4"))
    first = [decode_mp4_bytes(v.read_bytes())[0] for v in vids[:2]]
    # different motions give different videos, and frames change over time within one
    assert np.abs(first[0][0].astype(int) - first[1][0].astype(int)).mean() > 1.0
    assert np.abs(first[0][0].astype(int) - first[0][-1].astype(int)).mean() > 0.5
    ego = sorted(small_sample["nymeria"].glob("*/recording_head/rgb.mp4"))[0]
    frames = decode_mp4_bytes(ego.read_bytes())[0]
    assert np.abs(frames[0].astype(int) - frames[len(frames) // 2].astype(int)).mean() > 1.0
