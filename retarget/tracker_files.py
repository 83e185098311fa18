"""Motion files for the BeyondMimic (Isaac Lab) and mjlab (MuJoCo Warp) trackers.

What their loaders do (HybridRobotics/whole_body_tracking `tasks/tracking/mdp/commands.py` and
mujocolab/mjlab `tasks/tracking/mdp/commands.py`, `MotionLoader`): `np.load` the npz, take
`joint_pos`/`joint_vel` as the robot's full joint vector and write it straight into the robot
(reference state init), and index `body_pos_w`, `body_quat_w`, `body_lin_vel_w`, `body_ang_vel_w`
with `robot.find_bodies(body_names)` — the robot's own body indices. Both drive the **29-joint** G1.
So a file must hold all 29 joints and all bodies, in the order of the simulator the file is for:
- BeyondMimic: Isaac Lab articulation order, breadth-first over the kinematic tree (its
  `csv_to_npz.py` logs `robot.data.joint_pos` and `body_pos_w` from the sim);
- mjlab: MuJoCo order, depth-first as the MJCF lists them (`mjlab/scripts/csv_to_npz.py` logs
  `robot.data.joint_pos` / `body_link_pos_w`).
We write `joint_names` and `body_names` too (the loaders ignore extra keys). Quaternions wxyz.
A clip retargeted with the wrists locked (g1_23dof) is exported with the wrists at their locked value (0).
"""

from __future__ import annotations

import numpy as np

from retarget.g1 import G1_29DOF_JOINTS, WRIST_JOINTS
from retarget.motion import RobotMotion
from retarget.robot import G1

TARGETS = {"beyondmimic": "isaaclab_bfs", "mjlab": "mujoco"}  # export format -> joint/body order
BODY_KEYS = ("body_pos_w", "body_quat_w", "body_lin_vel_w", "body_ang_vel_w")


def _depths(robot: G1) -> np.ndarray:
    m = robot.mj
    depth = np.zeros(m.nbody, dtype=int)
    for b in range(1, m.nbody):
        depth[b] = depth[m.body_parentid[b]] + 1
    return depth


def bfs_body_order(robot: G1) -> tuple[str, ...]:
    """Bodies breadth-first (by depth, then MJCF order), as Isaac Lab articulations list them."""
    depth = _depths(robot)
    ids = sorted(range(1, robot.mj.nbody), key=lambda b: (depth[b], b))
    names = robot.body_names
    return tuple(names[b - 1] for b in ids)


def bfs_joint_order(robot: G1) -> tuple[str, ...]:
    """Joints breadth-first over the body tree, as Isaac Lab (PhysX) articulations list them."""
    import mujoco

    m = robot.mj
    depth = _depths(robot)
    joints = [(int(depth[m.jnt_bodyid[j]]), j, mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j))
              for j in range(m.njnt) if m.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
    return tuple(name for _, _, name in sorted(joints) if name in robot.config.joints)


def orders(robot: G1, order: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(joint order, body order) of `order` ("mujoco" | "isaaclab_bfs") for this robot."""
    if order == "mujoco":
        return robot.config.joints, robot.body_names
    if order == "isaaclab_bfs":
        return bfs_joint_order(robot), bfs_body_order(robot)
    raise ValueError(f"unknown order {order!r}; expected mujoco or isaaclab_bfs")


def to_29dof(m: RobotMotion, keep_wrists: bool = True) -> RobotMotion:
    """All 29 G1 joints in MuJoCo order; joints the motion does not drive (or `keep_wrists=False`
    for the wrists) at their locked value, 0."""
    q = np.zeros((m.n_frames, len(G1_29DOF_JOINTS)))
    for i, j in enumerate(G1_29DOF_JOINTS):
        if j in m.joint_names and (keep_wrists or j not in WRIST_JOINTS):
            q[:, i] = m.joint_pos[:, m.joint_names.index(j)]
    return RobotMotion(m.fps, G1_29DOF_JOINTS, m.root_pos_w, m.root_quat_wxyz, q, m.contact)


def tracker_dict(m: RobotMotion, fmt: str, robot_name: str = "g1_29dof", robot_xml: str | None = None,
                 fps: float | None = None) -> dict[str, np.ndarray]:
    """The npz arrays of a BeyondMimic or mjlab motion file (29 joints, the target's orders).

    robot_name: the configuration the file's motion drives: "g1_23dof" writes the wrists locked.
    """
    if fmt not in TARGETS:
        raise ValueError(f"unknown tracker format {fmt!r}; expected one of {sorted(TARGETS)}")
    robot = G1("g1_29dof", robot_xml)
    m29 = to_29dof(m.resampled(fps or m.fps), keep_wrists=robot_name == "g1_29dof")
    d = m29.to_beyondmimic(robot)  # MuJoCo order
    joints, bodies = orders(robot, TARGETS[fmt])
    jperm = [G1_29DOF_JOINTS.index(j) for j in joints]
    bperm = [robot.body_names.index(b) for b in bodies]
    d["joint_pos"], d["joint_vel"] = d["joint_pos"][:, jperm], d["joint_vel"][:, jperm]
    for k in BODY_KEYS:
        d[k] = d[k][:, bperm]
    d["joint_names"], d["body_names"] = np.array(joints), np.array(bodies)
    return d
