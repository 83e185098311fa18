"""Time resampling of motion to a uniform frame rate.

Positions are interpolated linearly, rotations by slerp on quaternions, labels by nearest
neighbour. All functions take the fractional source index from `uniform_index`.
"""

from __future__ import annotations

import numpy as np

from robomirror.rotations import axis_angle_to_quat_wxyz, quat_slerp, quat_wxyz_to_axis_angle


def uniform_index(times_s: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Target times t0 + k / fps that lie inside the source span, and their fractional index.

    times_s: (N,) strictly increasing source times [s].
    Returns: (target_times_s (T,), source_index (T,) float64).
    """
    n_out = int(np.floor((times_s[-1] - times_s[0]) * fps + 1e-6)) + 1
    target = times_s[0] + np.arange(n_out) / fps
    idx = np.interp(target, times_s, np.arange(len(times_s), dtype=np.float64))
    return target, idx


def _split(idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i0 = np.clip(np.floor(idx).astype(np.int64), 0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    return i0, i1, idx - i0


def interp_linear(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x: (N, ...) -> (T, ...) linearly interpolated at fractional indices."""
    i0, i1, a = _split(idx, len(x))
    a = a.reshape((-1,) + (1,) * (x.ndim - 1))
    return (1.0 - a) * x[i0] + a * x[i1]


def interp_quat_wxyz(q: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """q: (N, ..., 4) wxyz -> (T, ..., 4) by slerp."""
    i0, i1, a = _split(idx, len(q))
    a = a.reshape((-1,) + (1,) * (q.ndim - 2))
    return quat_slerp(q[i0], q[i1], a)


def interp_axis_angle(aa: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """aa: (N, K*3) axis-angle [rad] -> (T, K*3) by per-joint slerp."""
    n = aa.shape[0]
    q = axis_angle_to_quat_wxyz(aa.reshape(n, -1, 3))
    return quat_wxyz_to_axis_angle(interp_quat_wxyz(q, idx)).reshape(len(idx), -1)


def interp_nearest(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return x[np.clip(np.rint(idx).astype(np.int64), 0, len(x) - 1)]
