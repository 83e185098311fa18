"""Small contracts: config validation, tar member safety, clip cutting, readers' edge cases, CLIs."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from ingest.clips import cut_spans
from ingest.config import IngestConfig
from ingest.motionx import MOTIONX_COLUMNS, split_columns
from ingest.nymeria import detect_up_axis
from ingest.resample import interp_linear, uniform_index
from ingest.skeletons import SMPL_JOINTS
from robomirror.errors import ConfigError
from robomirror.tario import check_member_name, read_tar, write_tar
from tests.conftest import run_module


def test_config_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ConfigError, match="unknown ingest config keys \\['clip_len'\\]"):
        IngestConfig.from_dict({"clip_len": 100})
    with pytest.raises(ConfigError, match="clip_frames: expected int"):
        IngestConfig(clip_frames="150")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_frames must be in"):
        IngestConfig(min_frames=500)
    assert IngestConfig().fingerprint() == IngestConfig(shard_target_bytes=1).fingerprint()
    assert IngestConfig().fingerprint() != IngestConfig(stride_frames=75).fingerprint()


def test_cut_spans_full_short_and_overlapping():
    cfg = IngestConfig()
    assert [(s.start, s.end) for s in cut_spans(330, cfg)] == [(0, 150), (150, 300)]
    assert [(s.start, s.end) for s in cut_spans(100, cfg)] == [(0, 100)]
    assert cut_spans(59, cfg) == []
    assert len(cut_spans(300, IngestConfig(stride_frames=75))) == 3


@pytest.mark.parametrize("name", ["../etc/passwd", "/abs", "a/b", "", "x..y", ".hidden"])
def test_unsafe_member_names_refused(name):
    with pytest.raises(ValueError, match="unsafe"):
        check_member_name(name)


def test_tar_is_deterministic_and_reader_refuses_traversal(tmp_path):
    a, b = io.BytesIO(), io.BytesIO()
    write_tar(a, [("k.x", b"1"), ("k.y", b"22")])
    write_tar(b, [("k.x", b"1"), ("k.y", b"22")])
    assert a.getvalue() == b.getvalue()
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="unsafe"):
        list(read_tar(str(evil)))


def test_motionx_column_slices_cover_322_in_order():
    spans = sorted(MOTIONX_COLUMNS.values())
    assert spans[0][0] == 0 and spans[-1][1] == 322
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    row = np.arange(322, dtype=np.float32)[None]
    cols = split_columns(row)
    assert cols["trans"].tolist() == [[309, 310, 311]] and cols["betas"].shape == (1, 10)
    assert cols["pose_hand"].shape == (1, 90) and cols["face_shape"].shape == (1, 100)


def test_up_axis_detection():
    joints = np.zeros((4, 24, 3))
    joints[:, SMPL_JOINTS.index("head"), 1] = 1.6
    assert detect_up_axis(joints, SMPL_JOINTS) == "y"
    joints = joints[..., [0, 2, 1]]
    assert detect_up_axis(joints, SMPL_JOINTS) == "z"


def test_resampling_240_to_30_hits_every_eighth_frame():
    t = np.arange(2400) / 240.0
    target, idx = uniform_index(t, 30.0)
    assert len(target) == 300 and np.allclose(idx, np.arange(300) * 8)
    x = np.sin(t)[:, None]
    np.testing.assert_allclose(interp_linear(x, idx)[:, 0], np.sin(target), atol=1e-12)


@pytest.mark.parametrize("stage", ["ingest", "retarget", "latents", "catalog", "train", "deploy"])
def test_every_stage_has_a_cli(stage):
    out = run_module(stage, "--help", timeout=120)
    assert out.returncode == 0 and "usage" in out.stdout
