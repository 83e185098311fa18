"""When an episode ends: deviation beyond the curriculum's theta, a fall, or the clip's end.

Success in evaluation (the paper's Succ) uses the same measures with fixed thresholds: a failure
when the mean keypoint deviation exceeds 0.5 m, or when the root's tilt differs from the
reference's by more than 1 rad (57 deg; root pitch crossing, measured as the angle between the
robot's and the reference's up axes so that a roll fall counts too).
"""

from __future__ import annotations

import numpy as np

from robomirror.rotations import quat_wxyz_to_matrix

SUCC_MAX_DEVIATION_M = 0.5
MAX_TILT_RAD = 1.0


def mean_keypoint_deviation(kp_pos_w: np.ndarray, ref_kp_pos_w: np.ndarray) -> np.ndarray:
    return np.linalg.norm(kp_pos_w - ref_kp_pos_w, axis=-1).mean(-1)


def tilt_error(root_quat_w: np.ndarray, ref_root_quat_w: np.ndarray) -> np.ndarray:
    up = quat_wxyz_to_matrix(root_quat_w)[:, :, 2]
    ref_up = quat_wxyz_to_matrix(ref_root_quat_w)[:, :, 2]
    return np.arccos(np.clip(np.sum(up * ref_up, -1), -1.0, 1.0))


def terminated(kp_pos_w, ref_kp_pos_w, root_quat_w, ref_root_quat_w, theta_m: float) -> dict[str, np.ndarray]:
    return {"deviation": mean_keypoint_deviation(kp_pos_w, ref_kp_pos_w) > theta_m,
            "tilt": tilt_error(root_quat_w, ref_root_quat_w) > MAX_TILT_RAD}


def timed_out(frame: np.ndarray, clip_len: np.ndarray, steps: np.ndarray, max_steps: int) -> np.ndarray:
    return (frame >= clip_len - 1) | (steps >= max_steps)
