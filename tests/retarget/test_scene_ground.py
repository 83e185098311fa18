"""Retargeting against a clip's scene (issue 22): stepping onto a stair is not penetration, sitting on a
bench is supported, and the report says which ground was used."""

from __future__ import annotations

import pytest

from ingest.config import IngestConfig
from ingest.sample.scenes import write_scene_sequence
from ingest.scene_holosoma import discover_holosoma_climb, read_holosoma_climb
from retarget.clip import retarget_clip
from retarget.config import RetargetConfig
from retarget.robot import G1


@pytest.fixture(scope="module")
def robot():
    return G1()


def _seq(tmp_path, kind):
    write_scene_sequence(tmp_path, kind)
    return read_holosoma_climb(discover_holosoma_climb(tmp_path)[0], IngestConfig())


@pytest.mark.parametrize("kind", ["stairs", "bench"])
def test_scene_clip_is_grounded_on_the_scene(tmp_path, robot, kind):
    seq = _seq(tmp_path, kind)
    cfg = RetargetConfig(floor_z_m=0.0)
    on_scene = retarget_clip(robot, seq.joint_names, seq.joint_pos_w, seq.fps, cfg, scene=seq.scene).report
    flat = retarget_clip(robot, seq.joint_names, seq.joint_pos_w, seq.fps, cfg).report
    assert on_scene["ground"] == "scene" and "ground" not in flat  # flat reports keep their bytes
    assert on_scene["scene"]["kind"] == kind
    assert on_scene["metrics"]["penetration_cm"] < 2.0
    if kind == "bench":
        assert on_scene["scene"]["seated_fraction"] > 0.2
        assert on_scene["stability"]["passed"], on_scene["stability"]
