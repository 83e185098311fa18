"""Per-frame features of a G1 motion (the motion VAE's input), from a BeyondMimic-layout npz.

Per frame, in this order (F = 2 n_dof + 1 + 3 + 3 + 3 + 2 + 3 B):
joint_pos [rad], joint_vel [rad/s], root height [m], root linear velocity in the heading frame
[m/s], root angular velocity in the heading frame [rad/s], gravity direction in the root frame,
foot contacts (left, right), body positions relative to the root in the heading frame [m].
"""

from __future__ import annotations

import numpy as np

from robomirror.rotations import quat_wxyz_to_matrix


def heading_rotation(root_quat_wxyz: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation about z by the root's yaw (world <- heading frame)."""
    r = quat_wxyz_to_matrix(root_quat_wxyz)
    yaw = np.arctan2(r[:, 1, 0], r[:, 0, 0])
    c, s = np.cos(yaw), np.sin(yaw)
    out = np.zeros((len(yaw), 3, 3))
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1], out[:, 2, 2] = c, -s, s, c, 1.0
    return out


def motion_features(m: dict[str, np.ndarray]) -> np.ndarray:
    """m: robot.npz arrays -> (T, F) float32."""
    pos, quat = m["body_pos_w"].astype(np.float64), m["body_quat_w"].astype(np.float64)
    root_p, root_q = pos[:, 0], quat[:, 0]
    head_t = np.transpose(heading_rotation(root_q), (0, 2, 1))  # heading <- world
    root_r_t = np.transpose(quat_wxyz_to_matrix(root_q), (0, 2, 1))  # root <- world
    lin = np.einsum("tij,tj->ti", head_t, m["body_lin_vel_w"][:, 0])
    ang = np.einsum("tij,tj->ti", head_t, m["body_ang_vel_w"][:, 0])
    gravity = np.einsum("tij,j->ti", root_r_t, np.array([0.0, 0.0, -1.0]))
    rel = np.einsum("tij,tbj->tbi", head_t, pos - root_p[:, None])
    contact = m["contact"].astype(np.float64) if "contact" in m else np.zeros((len(pos), 2))
    feats = [m["joint_pos"], m["joint_vel"], root_p[:, 2:3], lin, ang, gravity, contact, rel.reshape(len(pos), -1)]
    return np.concatenate([np.asarray(f, dtype=np.float64).reshape(len(pos), -1) for f in feats], 1).astype(np.float32)


def feature_dim(n_dof: int, n_bodies: int) -> int:
    return 2 * n_dof + 1 + 3 + 3 + 3 + 2 + 3 * n_bodies
