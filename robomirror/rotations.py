"""Rotation helpers in the project's convention: quaternions wxyz, z-up world, metres.

Everything is vectorised over leading dimensions. Conversions to other conventions (xyzw for
pinocchio/PHC pickles, y-up for Motion-X) happen only in readers and writers.
"""

from __future__ import annotations

import numpy as np

# Rotation taking a y-up world (Motion-X, SMPL canonical) to the project's z-up world:
# +90 deg about x, so y -> z and z -> -y.
R_ZUP_FROM_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues. aa: (..., 3) [rad] -> (..., 3, 3)."""
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    small = theta < 1e-8
    axis = np.where(small, 0.0, aa / np.where(small, 1.0, theta))
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(theta)[..., None]
    c = np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + s * k + (1.0 - c) * (k @ k)


def matrix_to_quat_wxyz(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) unit quaternion wxyz with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    q = np.empty(m.shape[:-2] + (4,))
    # Shepperd's method: pick the largest diagonal term for numerical stability.
    cands = np.stack(
        [tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], axis=-1
    )
    best = np.argmax(cands, axis=-1)
    for i in range(4):
        sel = best == i
        if not np.any(sel):
            continue
        mm = m[sel]
        if i == 0:
            s = np.sqrt(1.0 + mm[:, 0, 0] + mm[:, 1, 1] + mm[:, 2, 2]) * 2
            q[sel] = np.stack([0.25 * s, (mm[:, 2, 1] - mm[:, 1, 2]) / s,
                               (mm[:, 0, 2] - mm[:, 2, 0]) / s, (mm[:, 1, 0] - mm[:, 0, 1]) / s], -1)
        elif i == 1:
            s = np.sqrt(1.0 + mm[:, 0, 0] - mm[:, 1, 1] - mm[:, 2, 2]) * 2
            q[sel] = np.stack([(mm[:, 2, 1] - mm[:, 1, 2]) / s, 0.25 * s,
                               (mm[:, 0, 1] + mm[:, 1, 0]) / s, (mm[:, 0, 2] + mm[:, 2, 0]) / s], -1)
        elif i == 2:
            s = np.sqrt(1.0 + mm[:, 1, 1] - mm[:, 0, 0] - mm[:, 2, 2]) * 2
            q[sel] = np.stack([(mm[:, 0, 2] - mm[:, 2, 0]) / s, (mm[:, 0, 1] + mm[:, 1, 0]) / s,
                               0.25 * s, (mm[:, 1, 2] + mm[:, 2, 1]) / s], -1)
        else:
            s = np.sqrt(1.0 + mm[:, 2, 2] - mm[:, 0, 0] - mm[:, 1, 1]) * 2
            q[sel] = np.stack([(mm[:, 1, 0] - mm[:, 0, 1]) / s, (mm[:, 0, 2] + mm[:, 2, 0]) / s,
                               (mm[:, 1, 2] + mm[:, 2, 1]) / s, 0.25 * s], -1)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz -> (..., 3, 3); normalises first."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) [rad], angle in [0, pi]."""
    q = matrix_to_quat_wxyz(m)
    return quat_wxyz_to_axis_angle(q)


def quat_wxyz_to_axis_angle(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    return np.where(s > 1e-12, v / np.where(s > 1e-12, s, 1.0) * angle, 2.0 * v)


def axis_angle_to_quat_wxyz(aa: np.ndarray) -> np.ndarray:
    aa = np.asarray(aa, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * theta
    scale = np.where(theta > 1e-12, np.sin(half) / np.where(theta > 1e-12, theta, 1.0), 0.5)
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Shortest-path slerp between wxyz quaternions. alpha broadcasts against q[..., 0]."""
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # double cover: take the short way round
    dot = np.abs(dot)
    a = np.asarray(alpha, dtype=np.float64)[..., None]
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_t = np.sin(theta)
    lin = sin_t < 1e-6
    w0 = np.where(lin, 1.0 - a, np.sin((1.0 - a) * theta) / np.where(lin, 1.0, sin_t))
    w1 = np.where(lin, a, np.sin(a * theta) / np.where(lin, 1.0, sin_t))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def quat_xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 3:4], q[..., :3]], axis=-1)


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 1:4], q[..., 0:1]], axis=-1)
