"""DeepMimic motion files as pybullet ships them: a fixture with the real layout's quirks (44 numbers a
frame, w-first local quaternions, one-angle knees and elbows, a y-up world, URDF offsets at 4x the
motion's metres, a URDF with CRLF lines that ends in a NUL byte), and the real files when cached."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retarget.deepmimic import FRAME_WIDTH, download_wheel, load_clips, read_motion
from robomirror.errors import SourceError

# joint origins of pybullet_data/humanoid/humanoid.urdf (URDF units: 4x metres)
ORIGINS = {"root": (0, 0, 0), "chest": (0, 0.944604, 0), "neck": (0, 0.895576, 0), "right_hip": (0, 0, 0.339548),
           "right_knee": (0, -1.686184, 0), "right_ankle": (0, -1.63948, 0), "right_shoulder": (-0.0962, 0.974, 0.73244),
           "right_elbow": (0, -1.099152, 0), "right_wrist": (0, -1.035788, 0), "left_hip": (0, 0, -0.339548),
           "left_knee": (0, -1.686184, 0), "left_ankle": (0, -1.63948, 0), "left_shoulder": (-0.0962, 0.974, -0.73244),
           "left_elbow": (0, -1.099152, 0), "left_wrist": (0, -1.035788, 0)}
URDF = ("<robot name=\"humanoid\">\r\n" + "".join(
    f"\t<joint name=\"{j}\" type=\"spherical\" >\r\n\t\t<origin rpy = \"0 0 0\" xyz = \"{x} {y} {z}\" />\r\n\t</joint>\r\n"
    for j, (x, y, z) in ORIGINS.items()) + "</robot>\r\n\x00")


def _frames(n: int = 3, knee: float = 0.0) -> list[list[float]]:
    ident = [1.0, 0.0, 0.0, 0.0]
    one = [1 / 30, 0.0, 0.9, 0.0, *ident, *ident, *ident, *ident, knee, *ident, *ident, 0.0,
           *ident, knee, *ident, *ident, 0.0]
    assert len(one) == FRAME_WIDTH
    return [list(one) for _ in range(n)]


def _clip(frames) -> object:
    return read_motion("fixture", json.dumps({"Loop": "wrap", "Frames": frames}), URDF)


def test_rest_pose_lands_z_up_in_metres_with_the_left_side_at_plus_y():
    c = _clip(_frames())
    p = {n: c.joint_pos_w[0, i] for i, n in enumerate(c.joint_names)}
    assert c.fps == pytest.approx(30.0)
    assert p["Hips"] == pytest.approx([0.0, 0.0, 0.9])
    assert p["LeftUpLeg"] == pytest.approx([0.0, 0.339548 / 4, 0.9])  # DeepMimic's -z is the left
    assert p["LeftFoot"][2] == pytest.approx(0.9 - (1.686184 + 1.63948) / 4)
    assert p["LeftToeBase"][0] > p["LeftFoot"][0] + 0.05 and p["LeftToeBase"][2] < p["LeftFoot"][2]  # toe forward, down
    assert p["Head"][2] > p["Neck"][2] > p["Spine1"][2] > 0.9


def test_a_bent_knee_moves_the_ankle_backwards():
    c = _clip(_frames(knee=-1.0))
    i = c.joint_names.index("LeftFoot")
    knee = c.joint_pos_w[0, c.joint_names.index("LeftLeg")]
    shin = 1.63948 / 4
    assert c.joint_pos_w[0, i] == pytest.approx(knee + [-shin * np.sin(1.0), 0.0, -shin * np.cos(1.0)])


@pytest.mark.parametrize("damage,match", [
    (lambda f: [row[:-1] for row in f], "must be"),
    (lambda f: [row[:5] + [float("nan")] + row[6:] for row in f], "NaN"),
    (lambda f: [row[:4] + [0.0, 0.0, 0.0, 0.0] + row[8:] for row in f], "unit norm"),
    (lambda f: [[0.0] + row[1:] for row in f], "duration"),
])
def test_malformed_frames_get_a_clear_error(damage, match):
    with pytest.raises(SourceError, match=match):
        _clip(damage(_frames()))


@pytest.fixture(scope="module")
def wheel() -> Path:
    """pybullet's wheel in data/cache, downloaded from the registry once (skips when none is reachable)."""
    found = download_wheel(Path(__file__).resolve().parents[2] / "data" / "cache")
    if found is None:
        pytest.skip("pybullet's wheel is not in data/cache and no registry is reachable")
    return found


def test_the_real_files(wheel):
    clips = {c.name: c for c in load_clips(wheel)}
    assert {"crawl", "roll", "cartwheel", "getup_facedown", "walk"} <= set(clips)
    assert clips["crawl"].joint_pos_w[:, 0, 2].max() < 0.5 < clips["walk"].joint_pos_w[:, 0, 2].min()  # on all fours
    toes = clips["walk"].joint_pos_w[:, [clips["walk"].joint_names.index(n) for n in ("LeftToeBase", "RightToeBase")], 2]
    assert -0.03 < toes.min() < 0.03  # the files' floor is y = 0


def test_download_is_skipped_cleanly_without_a_registry(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1))
    assert download_wheel(tmp_path) is None


def test_the_first_frame_converges_where_full_steps_cycle(wheel, monkeypatch):
    """The cartwheel's first pose made full Gauss-Newton steps cycle (0.6 rad back and forth for all 50
    iterations): damped when the step stops shrinking, the first frame converges."""
    import retarget.ik as ik
    from retarget.clip import retarget_clip
    from retarget.config import RetargetConfig
    from retarget.robot import G1

    clip = {c.name: c for c in load_clips(wheel)}["cartwheel"]
    steps: list[float] = []
    real = ik.ik_velocity

    def spy(conf, tasks, limits, dt):
        v = real(conf, tasks, limits, dt)
        steps.append(float(np.abs(v).max() * dt))
        return v

    monkeypatch.setattr(ik, "ik_velocity", spy)
    n = 5
    retarget_clip(G1(), clip.joint_names, clip.joint_pos_w[:n], clip.fps, RetargetConfig(floor_z_m=0.0))
    first = steps[: len(steps) - 2 * (n - 1)]
    assert len(first) < ik.IKConfig().first_frame_iterations  # stopped by the tolerance, not the cap
    assert first[-1] < 10 * ik.IKConfig().first_frame_tol_rad  # the steps shrank to nothing (no 0.6 rad cycle)


def test_self_collision_avoidance_on_real_mocap(wheel):
    """Real mocap with the hands at the sides (punch: the G1's hips are wider than the human's): the arm
    barrier removes most self-collision frames without costing the clip's accuracy."""
    from retarget.clip import retarget_clip
    from retarget.config import RetargetConfig
    from retarget.robot import G1

    clip = {c.name: c for c in load_clips(wheel)}["punch"]
    robot = G1()
    metrics = {on: retarget_clip(robot, clip.joint_names, clip.joint_pos_w, clip.fps,
                                 RetargetConfig(floor_z_m=0.0, self_collision=on)).report["metrics"] for on in (False, True)}
    assert metrics[False]["self_collision_frames"] >= 20  # the problem is real on this clip ...
    assert metrics[True]["self_collision_frames"] <= metrics[False]["self_collision_frames"] / 4  # ... and mostly gone
    assert metrics[True]["mpkpe_aligned_mean_m"] < metrics[False]["mpkpe_aligned_mean_m"] + 0.005
