"""SOMA BVH files in BONES-SEED's `soma_uniform/bvh/<date>/<filename>.bvh` layout, written from a G1 motion.

The skeleton is the G1's own kinematic tree, its joints named as SOMA names the places the SMPL map reads
(Hips, LeftLeg = hip, LeftShin = knee, LeftFoot, LeftToeBase, Spine1, Spine2, Chest, Neck1, LeftShoulder =
collar, LeftArm = shoulder, ...) and by G1 link names in between. Each joint's offset and rotation are its
G1 link's, so the BVH's joint positions are the G1 keypoints: a reader must get the G1 motion back, and
retargeting it must give back the G1 pose (a known pose, the property tests/ingest/test_soma_bvh.py checks).

Written with the real files' quirks (ingest/bones_seed.py's sources): a `Root` joint above Hips, y-up,
centimetres, Frame Time 0.008333 s (120.0048 fps), Hips with six channels (position then Z Y X rotation),
the other joints three rotation channels in varied orders, End Sites at the tips, CRLF line ends, and
rest rotations that are not identity (the pose is in the rotations, not in the offsets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robomirror.atomic import publish_bytes
from robomirror.rotations import R_ZUP_FROM_YUP

FRAME_TIME_S = 0.008333  # what BONES-SEED's BVH headers say for 120 fps
CM_PER_M = 100.0
ORDERS = ("ZXY", "XYZ", "YZX", "ZYX")  # rotation channel orders, cycled over the joints

# (name, parent, G1 body, offset in that body [m]); parents come first
SOMA_ON_G1: tuple[tuple[str, str | None, str, tuple[float, float, float]], ...] = (
    ("Hips", "Root", "pelvis", (0.0, 0.0, -0.08)),  # the G1's pelvis keypoint (retarget/g1.py)
    ("Spine1", "Hips", "waist_yaw_link", (0.0, 0.0, 0.0)),
    ("Spine2", "Spine1", "waist_roll_link", (0.0, 0.0, 0.0)),
    ("Chest", "Spine2", "torso_link", (0.0, 0.0, 0.0)),
    ("Neck1", "Chest", "torso_link", (0.0, 0.0, 0.33)),
    ("Neck2", "Neck1", "torso_link", (0.0, 0.0, 0.38)),
    ("Head", "Neck2", "torso_link", (0.0, 0.0, 0.43)),
    *((f"{S}Shoulder", "Chest", "torso_link", (0.0, sign * 0.05, 0.24)) for S, sign in (("Left", 1), ("Right", -1))),
    *(j for S, s in (("Left", "left"), ("Right", "right")) for j in (
        (f"{s}_shoulder_pitch_link", f"{S}Shoulder", f"{s}_shoulder_pitch_link", (0.0, 0.0, 0.0)),
        (f"{S}Arm", f"{s}_shoulder_pitch_link", f"{s}_shoulder_roll_link", (0.0, 0.0, 0.0)),
        (f"{s}_shoulder_yaw_link", f"{S}Arm", f"{s}_shoulder_yaw_link", (0.0, 0.0, 0.0)),
        (f"{S}ForeArm", f"{s}_shoulder_yaw_link", f"{s}_elbow_link", (0.0, 0.0, 0.0)),
        (f"{s}_wrist_roll_link", f"{S}ForeArm", f"{s}_wrist_roll_link", (0.0, 0.0, 0.0)),
        (f"{s}_wrist_pitch_link", f"{s}_wrist_roll_link", f"{s}_wrist_pitch_link", (0.0, 0.0, 0.0)),
        (f"{S}Hand", f"{s}_wrist_pitch_link", f"{s}_wrist_yaw_link", (0.0, 0.0, 0.0)),
        (f"{S}Leg", "Hips", f"{s}_hip_pitch_link", (0.0, 0.0, 0.0)),
        (f"{s}_hip_roll_link", f"{S}Leg", f"{s}_hip_roll_link", (0.0, 0.0, 0.0)),
        (f"{s}_hip_yaw_link", f"{s}_hip_roll_link", f"{s}_hip_yaw_link", (0.0, 0.0, 0.0)),
        (f"{S}Shin", f"{s}_hip_yaw_link", f"{s}_knee_link", (0.0, 0.0, 0.0)),
        (f"{s}_ankle_pitch_link", f"{S}Shin", f"{s}_ankle_pitch_link", (0.0, 0.0, 0.0)),
        (f"{S}Foot", f"{s}_ankle_pitch_link", f"{s}_ankle_roll_link", (0.0, 0.0, 0.0)),
        (f"{S}ToeBase", f"{S}Foot", f"{s}_ankle_roll_link", (0.13, 0.0, -0.03)),  # the toe keypoint
    )),
)
END_SITES = {"Head": (0.0, 0.0, 10.0), "LeftHand": (8.0, 0.0, 0.0), "RightHand": (8.0, 0.0, 0.0),
             "LeftToeBase": (5.0, 0.0, 0.0), "RightToeBase": (5.0, 0.0, 0.0)}  # [cm], in the joint's frame


def _euler_intrinsic_deg(m: np.ndarray, order: str) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(m).as_euler(order, degrees=True)  # upper case: intrinsic, R = R_a R_b R_c


def soma_frames_from_g1(root_pos_w: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray) -> tuple:
    """World positions (T, J, 3) [m] and rotations (T, J, 3, 3) of SOMA_ON_G1's joints, y-up (the file's frame)."""
    import mujoco

    from retarget.robot import G1

    robot = G1("g1_29dof")
    ids = [mujoco.mj_name2id(robot.mj, mujoco.mjtObj.mjOBJ_BODY, b) for _, _, b, _ in SOMA_ON_G1]
    off = np.array([o for *_, o in SOMA_ON_G1])
    qpos = robot.qpos(root_pos_w, root_quat_wxyz, joint_pos)
    pos, rot = np.empty((len(qpos), len(ids), 3)), np.empty((len(qpos), len(ids), 3, 3))
    for t, q in enumerate(qpos):
        robot.forward(q)
        r = robot.mj_data.xmat[ids].reshape(-1, 3, 3)
        pos[t], rot[t] = robot.mj_data.xpos[ids] + np.einsum("kij,kj->ki", r, off), r
    yup = R_ZUP_FROM_YUP.T
    return pos @ yup.T, np.einsum("ij,tkjl->tkil", yup, rot)


def soma_bvh_text(pos_w: np.ndarray, rot_w: np.ndarray) -> str:
    """The BVH of SOMA_ON_G1 joints at world frames (T, J, 3) [m] / (T, J, 3, 3), y-up, in centimetres."""
    names = [n for n, *_ in SOMA_ON_G1]
    parent = {n: p for n, p, *_ in SOMA_ON_G1}
    idx = {n: i for i, n in enumerate(names)}
    local_rot = np.empty_like(rot_w)
    offsets = {}
    for i, n in enumerate(names):
        if parent[n] == "Root":
            local_rot[:, i] = rot_w[:, i]
            offsets[n] = pos_w[0, i] * CM_PER_M
            continue
        p = idx[parent[n]]
        local_rot[:, i] = np.einsum("tji,tjk->tik", rot_w[:, p], rot_w[:, i])
        t_local = np.einsum("tji,tj->ti", rot_w[:, p], pos_w[:, i] - pos_w[:, p])
        offsets[n] = t_local[0] * CM_PER_M  # rigid: the same in every frame
    order = {n: ("ZYX" if n == "Hips" else ORDERS[i % len(ORDERS)]) for i, n in enumerate(names)}
    lines = ["HIERARCHY", "ROOT Root", "{", "\tOFFSET 0.000000 0.000000 0.000000",
             "\tCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation"]

    def emit(n: str, depth: int) -> None:
        tab = "\t" * depth
        chans = [f"{a}rotation" for a in order[n]]
        if n == "Hips":
            chans = ["Xposition", "Yposition", "Zposition", *chans]
        lines.extend([f"{tab}JOINT {n}", f"{tab}{{", f"{tab}\tOFFSET " + " ".join(f"{v:.6f}" for v in offsets[n]),
                      f"{tab}\tCHANNELS {len(chans)} {' '.join(chans)}"])
        for c in (c for c, p, *_ in SOMA_ON_G1 if p == n):
            emit(c, depth + 1)
        if n in END_SITES:
            lines.extend([f"{tab}\tEnd Site", f"{tab}\t{{",
                          f"{tab}\t\tOFFSET " + " ".join(f"{v:.6f}" for v in END_SITES[n]), f"{tab}\t}}"])
        lines.append(f"{tab}}}")

    emit("Hips", 1)
    lines.append("}")
    cols = [np.zeros((len(pos_w), 6))]
    for n in _declaration_order():
        i = idx[n]
        if n == "Hips":
            cols.append(pos_w[:, i] * CM_PER_M)
        cols.append(_euler_intrinsic_deg(local_rot[:, i], order[n]))
    rows = np.concatenate(cols, axis=1)
    lines += ["MOTION", f"Frames: {len(rows)}", f"Frame Time: {FRAME_TIME_S}"]
    lines += [" ".join(f"{v:.6f}" for v in r) for r in rows]
    return "\r\n".join(lines) + "\r\n"


def _declaration_order() -> list[str]:
    out: list[str] = []

    def walk(n: str) -> None:
        out.append(n)
        for c in (c for c, p, *_ in SOMA_ON_G1 if p == n):
            walk(c)

    walk("Hips")
    return out


def write_soma_bvh(path: Path, root_pos_w: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray) -> None:
    """A SOMA BVH of a G1 motion (z-up, metres, wxyz, rad in, y-up centimetres degrees out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    publish_bytes(path, soma_bvh_text(*soma_frames_from_g1(root_pos_w, root_quat_wxyz, joint_pos)).encode())

