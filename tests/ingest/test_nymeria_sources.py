"""Nymeria: the XSens body source and the VRS video branch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ingest.config import IngestConfig
from ingest.nymeria import discover_nymeria, read_nymeria, read_xsens
from ingest.skeletons import XSENS_SEGMENTS


def test_xsens_body_source_resamples_240hz_segments(small_sample):
    ref = discover_nymeria(small_sample["nymeria"])[0]
    seq = read_nymeria(ref, None, IngestConfig(nymeria_body_source="xsens"))  # type: ignore[arg-type]
    assert seq.body_source == "xsens" and seq.joint_names == XSENS_SEGMENTS
    xs = read_xsens(dict(ref.files)["xsens"])
    np.testing.assert_allclose(seq.joint_pos_w[0], xs["segment_pos_w"][0], atol=1e-5)
    np.testing.assert_allclose(seq.joint_pos_w[1], xs["segment_pos_w"][8], atol=1e-3)
    head = XSENS_SEGMENTS.index("Head")
    assert seq.joint_pos_w[:, head, 2].mean() > 1.3 and seq.joint_pos_w[:, head, 2].min() > 0.7  # z-up


def test_smpl_and_xsens_agree_on_the_head(small_sample):
    from ingest.body_model import BuiltinSkeleton

    ref = discover_nymeria(small_sample["nymeria"])[0]
    smpl = read_nymeria(ref, BuiltinSkeleton("smpl"), IngestConfig())
    assert smpl.notes["source_up_axis"] == "y"
    head_smpl = smpl.joint_pos_w[:, smpl.joint_names.index("head")]
    head_xs = smpl.params["xsens_segment_pos_w"][:, XSENS_SEGMENTS.index("Head")]
    np.testing.assert_allclose(head_smpl, head_xs, atol=1e-3)


@pytest.mark.vrs
@pytest.mark.skipif(not os.environ.get("ROBOMIRROR_TEST_VRS"), reason="set ROBOMIRROR_TEST_VRS to a real Aria data.vrs")
def test_real_vrs_frames_decode():
    from ingest.video import VideoSource, iter_frames

    path = os.environ["ROBOMIRROR_TEST_VRS"]
    frames = []
    for t, rgb in iter_frames(VideoSource(str(Path(path)), "vrs"), 64):
        frames.append((t, rgb))
        if len(frames) == 10:
            break
    assert len(frames) == 10 and frames[0][1].shape == (64, 64, 3)
    assert all(b[0] > a[0] for a, b in zip(frames, frames[1:], strict=False))
