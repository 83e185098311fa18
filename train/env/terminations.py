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


# mjlab's tracking terminations (its tracking_env_cfg.py), for training with the "mjlab" set: the anchor
# (torso) more than 0.25 m above or below the reference's, its up axis off the reference's by more than
# 0.8 in the projected gravity's z, or an end effector (ankle rolls, wrists) 0.25 m off in height.
# Evaluation keeps the Succ criteria above.
MJLAB_ANCHOR_Z_M = 0.25
MJLAB_ANCHOR_GRAVITY_Z = 0.8
MJLAB_END_EFFECTOR_Z_M = 0.25
ANCHOR_KEYPOINT = 15  # torso_link
END_EFFECTOR_KEYPOINTS = (6, 12, 25, 26)  # left/right ankle roll, left/right wrist


def mjlab_terminated(kp_pos_w: np.ndarray, ref_kp_pos_w: np.ndarray, anchor_rot_w: np.ndarray,
                     ref_anchor_rot_w: np.ndarray) -> dict[str, np.ndarray]:
    a, ee = ANCHOR_KEYPOINT, list(END_EFFECTOR_KEYPOINTS)
    # projected gravity's z in the anchor frame is -R[2, 2]; the difference of the two
    return {"anchor_z": np.abs(kp_pos_w[:, a, 2] - ref_kp_pos_w[:, a, 2]) > MJLAB_ANCHOR_Z_M,
            "anchor_ori": np.abs(anchor_rot_w[:, 2, 2] - ref_anchor_rot_w[:, 2, 2]) > MJLAB_ANCHOR_GRAVITY_Z,
            "end_effector_z": np.any(np.abs(kp_pos_w[:, ee, 2] - ref_kp_pos_w[:, ee, 2]) > MJLAB_END_EFFECTOR_Z_M, -1)}
