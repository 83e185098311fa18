"""Retargeting against a clip's scene (issue 22): stepping onto a stair is not penetration, sitting on a
bench is supported, and the report says which ground was used."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.config import IngestConfig
from ingest.sample.scenes import write_scene_sequence
from ingest.scene_holosoma import discover_holosoma_climb, read_holosoma_climb
from retarget.clip import retarget_clip
from retarget.config import RetargetConfig
from retarget.robot import G1
from retarget.scene_ground import foot_clearance, robot_scene


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


FLOAT_TOL_M = 0.03  # a sole this close to the surface under it is on it (the contact labels' own band is 5 cm)


@pytest.mark.parametrize("kind", ["stairs", "bench"])
def test_scene_clip_does_not_float(tmp_path, robot, kind):
    """Put back through forward kinematics, the retargeted clip stands on its scene: neither clip has a
    flight phase, so in every frame the lowest sole is within FLOAT_TOL_M of the surface under it (before
    the fix the stair climb's lowest sole floated up to 23 cm: a foot the data puts inside the first stair
    dragged the contact floor below the treads, so only 12 % of frames counted as contact), the feet
    labelled in contact are on the surface (95th percentile), and the report's `float_cm` says so."""
    seq = _seq(tmp_path, kind)
    res = retarget_clip(robot, seq.joint_names, seq.joint_pos_w, seq.fps, RetargetConfig(floor_z_m=0.0), scene=seq.scene)
    m, report = res.motion, res.report
    qpos = robot.qpos(m.root_pos_w, m.root_quat_wxyz, m.joint_pos)
    clear = foot_clearance(robot, qpos, robot_scene(seq.scene, report["scene"]["scale"]))  # (T, 2) [m]
    lowest = clear.min(axis=1)
    assert lowest.max() < FLOAT_TOL_M, f"frame {lowest.argmax()}: lowest sole {lowest.max():.3f} m above the scene"
    assert report["metrics"]["human_contact_fraction"] > 0.5  # a climb and a sit stand on their feet
    contact = _labels(robot, seq, report)
    assert np.percentile(clear[contact], 95) < FLOAT_TOL_M
    assert 0.0 <= report["metrics"]["float_cm"] < 1.0
    assert report["metrics"]["penetration_cm"] < 2.0


def _labels(robot, seq, report):
    """The contact labels retargeting used, recomputed from the same targets."""
    from retarget.clip import human_keypoints, keep_floor_clearance
    from retarget.scene_ground import keypoint_heights, scene_contact_labels
    from retarget.shape_fit import ShapeFit, apply_shape

    shape = ShapeFit(**report["shape_fit"])
    _, human = human_keypoints(seq.joint_names, seq.joint_pos_w)
    targets = keep_floor_clearance(human, apply_shape(human, shape))
    foot_xy = np.stack([targets[f"{s}_ankle"][:, :2] for s in ("left", "right")], 1)
    return scene_contact_labels(keypoint_heights(targets, robot_scene(seq.scene, shape.root_scale)), foot_xy, seq.fps)
