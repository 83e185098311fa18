"""Exports load in each tracker's own loading logic (re-implemented here from its source).

BeyondMimic (whole_body_tracking `tasks/tracking/mdp/commands.py`) and mjlab (`mjlab/tasks/tracking/
mdp/commands.py`) both `np.load` the file, write `joint_pos` straight into the robot's full joint
vector and index the body arrays with `robot.find_bodies(body_names)`: the robot's own body indices.
Isaac Lab lists joints and bodies breadth-first; mjlab (MuJoCo) as the MJCF does, depth-first.
"""

from __future__ import annotations

from collections import deque

import mujoco
import numpy as np
import pytest

from retarget.g1 import G1_23DOF_JOINTS, TRACKED_BODIES, WRIST_JOINTS, find_g1_xml
from retarget.interop import export_clip, import_beyondmimic, write_tracker
from retarget.motion import RobotMotion


def _model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(find_g1_xml()))


def _mujoco_orders(m: mujoco.MjModel) -> tuple[list[str], list[str]]:
    joints = [m.joint(j).name for j in range(m.njnt) if m.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
    bodies = [m.body(b).name for b in range(1, m.nbody)]
    return joints, bodies


def _physx_orders(m: mujoco.MjModel) -> tuple[list[str], list[str]]:
    """Isaac Lab's articulation order: a breadth-first walk of the link tree from the root."""
    children: dict[int, list[int]] = {}
    for b in range(1, m.nbody):
        children.setdefault(int(m.body_parentid[b]), []).append(b)
    order, queue = [], deque(children[0])
    while queue:
        b = queue.popleft()
        order.append(b)
        queue.extend(children.get(b, []))
    bodies = [m.body(b).name for b in order]
    joints = [m.joint(j).name for b in order for j in range(m.njnt)
              if m.jnt_bodyid[j] == b and m.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
    return joints, bodies


def _load_like_tracker(path, joint_order: list[str], body_order: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The trackers' MotionLoader + reference state init, on a MuJoCo G1: returns (body positions the
    robot reaches from the file's joint_pos, the file's body_pos_w at the robot's body indices)."""
    data = np.load(path)  # what the loaders do: no names needed
    m = _model()
    d = mujoco.MjData(m)
    joint_pos = data["joint_pos"]
    assert joint_pos.shape[1] == len(joint_order) == 29  # written straight into the 29-joint robot
    body_indexes = [body_order.index(n) for n in TRACKED_BODIES]  # robot.find_bodies(body_names)
    ref = data["body_pos_w"][:, body_indexes]
    root = data["body_pos_w"][:, body_order.index("pelvis")], data["body_quat_w"][:, body_order.index("pelvis")]
    reached = np.empty_like(ref)
    for t in range(len(joint_pos)):
        d.qpos[:3], d.qpos[3:7] = root[0][t], root[1][t]
        for i, name in enumerate(joint_order):
            d.qpos[m.jnt_qposadr[m.joint(name).id]] = joint_pos[t, i]
        mujoco.mj_kinematics(m, d)
        reached[t] = [d.xpos[m.body(n).id] for n in TRACKED_BODIES]
    return reached, ref


def _motion(n=12, seed=1) -> RobotMotion:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return RobotMotion(30.0, G1_23DOF_JOINTS, rng.normal(size=(n, 3)), q, rng.uniform(-0.4, 0.4, size=(n, 23)))


@pytest.mark.parametrize("fmt,orders", [("beyondmimic", _physx_orders), ("mjlab", _mujoco_orders)])
def test_export_loads_in_the_target_loader(tmp_path, fmt, orders):
    path = tmp_path / f"{fmt}.npz"
    write_tracker(path, _motion(), fmt, "g1_23dof")
    joints, bodies = orders(_model())
    reached, ref = _load_like_tracker(path, joints, bodies)
    np.testing.assert_allclose(reached, ref, atol=1e-4)  # the same body positions
    with np.load(path) as z:
        assert list(z["joint_names"]) == joints and list(z["body_names"]) == bodies
        wrists = [joints.index(j) for j in WRIST_JOINTS]
        assert np.all(z["joint_pos"][:, wrists] == 0)  # locked wrists of a g1_23dof clip
        assert {"fps", "joint_vel", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w"} <= set(z.files)


def test_the_orders_differ_so_the_test_can_fail(tmp_path):
    write_tracker(tmp_path / "bm.npz", _motion(), "beyondmimic")
    reached, ref = _load_like_tracker(tmp_path / "bm.npz", *_mujoco_orders(_model()))  # the wrong simulator
    assert np.abs(reached - ref).max() > 0.05


def test_real_beyondmimic_file_without_names_imports(tmp_path):
    """Isaac-ordered joints and bodies, no joint_names/body_names: accepted, joints back in our order."""
    m = _motion()
    write_tracker(tmp_path / "bm.npz", m, "beyondmimic")
    with np.load(tmp_path / "bm.npz") as z:
        d = {k: z[k] for k in z.files if k not in ("joint_names", "body_names")}
    np.savez(tmp_path / "bare.npz", **d)
    back = import_beyondmimic(tmp_path / "bare.npz")
    assert len(back.joint_names) == 29
    cols = [back.joint_names.index(j) for j in G1_23DOF_JOINTS]
    np.testing.assert_allclose(back.joint_pos[:, cols], m.joint_pos, atol=1e-6)
    np.testing.assert_allclose(back.root_pos_w, m.root_pos_w, atol=1e-6)
    named = import_beyondmimic(tmp_path / "bm.npz")  # with names: the same motion
    np.testing.assert_allclose(named.joint_pos, back.joint_pos, atol=1e-6)


def test_cli_export_honours_format_and_robot(retargeted, tmp_path):
    import pyarrow.parquet as pq

    from robomirror.safe_pickle import safe_load

    layout, _ = retargeted
    manifest = sorted(layout.root.glob("shards/retarget/*/manifest.parquet"))[0]
    clip = pq.read_table(manifest).column("clip_id")[0].as_py()
    for fmt, orders in (("beyondmimic", _physx_orders), ("mjlab", _mujoco_orders)):
        export_clip(layout, clip, fmt, tmp_path / f"{fmt}.npz", 50.0, "g1_23dof")
        reached, ref = _load_like_tracker(tmp_path / f"{fmt}.npz", *orders(_model()))
        np.testing.assert_allclose(reached, ref, atol=1e-4)
    export_clip(layout, clip, "gmr", tmp_path / "g23.pkl", 50.0, "g1_23dof")
    export_clip(layout, clip, "gmr", tmp_path / "g29.pkl", 50.0, "g1_29dof")
    assert safe_load(tmp_path / "g23.pkl")["dof_pos"].shape[1] == 23
    assert safe_load(tmp_path / "g29.pkl")["dof_pos"].shape[1] == 29


REALDATA = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "realdata"


@pytest.mark.realdata
@pytest.mark.skipif(not (REALDATA / "gmt_squat.pkl").is_file(), reason="../shared/realdata is absent")
def test_import_keeps_or_grounds_the_floor_and_reports_stability(tmp_path):
    from retarget.interop import floor_offset_m, import_gmr
    from retarget.robot import G1
    from tests.conftest import run_module

    m = import_gmr(REALDATA / "gmt_squat.pkl")
    robot = G1("g1_23dof")
    out = run_module("retarget", "import", str(REALDATA / "gmt_squat.pkl"), "--format", "gmr",
                     "--out", str(tmp_path / "kept.npz"))
    assert out.returncode == 0, out.stderr
    assert "stability (CoM-CoP" in out.stdout and "floor at z" in out.stdout
    kept = import_beyondmimic(tmp_path / "kept.npz")
    assert abs(floor_offset_m(kept, robot) - floor_offset_m(m, robot)) < 1e-4  # the file's offset is kept
    out = run_module("retarget", "import", str(REALDATA / "gmt_squat.pkl"), "--format", "gmr",
                     "--out", str(tmp_path / "g.npz"), "--ground")
    assert out.returncode == 0 and "grounded" in out.stdout
    assert abs(floor_offset_m(import_beyondmimic(tmp_path / "g.npz"), robot)) < 1e-3
