"""Rewards and penalties of the paper's Table 10 with its weights, and PBHC's adaptive sigma.

Task terms are exp(-x / sigma) of a tracking error x (squared norms, as the table writes them;
the max-joint term uses the infinity norm). Each sigma starts at PBHC's value and tightens to an
exponential moving average of its error (alpha 1e-3), never loosening: sigma = min(sigma, ema).
Penalties are scaled by the penalty curriculum; the termination penalty is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robomirror import g1_contract as g1
from robomirror.rotations import matrix_to_axis_angle, quat_wxyz_to_matrix
from train.env.observations import RobotState

TASK_WEIGHTS = {"joint_pos": 1.0, "joint_vel": 1.0, "body_pos": 1.0, "body_rot": 0.5, "body_lin_vel": 0.5,
                "body_ang_vel": 0.5, "vr_3point": 1.6, "feet_pos": 1.0, "max_joint_pos": 1.0, "contact_mask": 0.5}
PENALTY_WEIGHTS = {"joint_pos_limit": -10.0, "joint_vel_limit": -5.0, "torque_limit": -5.0, "foot_slip": -1.0,
                   "foot_force": -0.01, "air_time": -1.0, "stumble": -2.0, "torque": -1e-6, "action_rate": -0.02,
                   "collision": -30.0}
TERMINATION_WEIGHT = -200.0
# PBHC's initial sigmas (its reward_tracking_sigma); rotation and VR terms chosen on the same scale
INITIAL_SIGMA = {"joint_pos": 0.3, "joint_vel": 30.0, "body_pos": 0.015, "body_rot": 0.1, "body_lin_vel": 1.0,
                 "body_ang_vel": 15.0, "vr_3point": 0.03, "feet_pos": 0.01, "max_joint_pos": 1.0}
SOFT_LIMIT_FACTOR = 0.95
FOOT_FORCE_LIMIT_N = 400.0
AIR_TIME_LIMIT_S = 0.3


def soft_limits(lower: np.ndarray, upper: np.ndarray, alpha: float = SOFT_LIMIT_FACTOR) -> tuple[np.ndarray, np.ndarray]:
    """The paper's eqs. 3-6: the hard range shrunk about its midpoint by alpha."""
    mid, rng = (lower + upper) / 2, upper - lower
    return mid - 0.5 * rng * alpha, mid + 0.5 * rng * alpha


@dataclass
class AdaptiveSigma:
    alpha: float = 1e-3
    sigma: dict[str, float] = field(default_factory=lambda: dict(INITIAL_SIGMA))
    ema: dict[str, float] = field(default_factory=lambda: dict(INITIAL_SIGMA))
    enabled: bool = True

    def update(self, errors: dict[str, np.ndarray]) -> None:
        if not self.enabled:
            return
        for k, e in errors.items():
            self.ema[k] = self.ema[k] * (1 - self.alpha) + float(np.mean(e)) * self.alpha
            self.sigma[k] = min(self.sigma[k], self.ema[k])


def tracking_errors(s: RobotState, ref: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-env errors (N,) of every exponential term."""
    dq = s.joint_pos - ref["joint_pos"]
    ref_rot = ref["kp_rot"] if "kp_rot" in ref else quat_wxyz_to_matrix(ref["kp_quat"])
    rel = np.swapaxes(s.kp_rot, -1, -2) @ ref_rot
    angle = np.linalg.norm(matrix_to_axis_angle(rel), axis=-1)
    sq = lambda a, b: np.sum((a - b) ** 2, -1)  # noqa: E731
    feet, vr = list(g1.FEET_KEYPOINTS), list(g1.VR_KEYPOINTS)
    return {
        "joint_pos": np.sum(dq ** 2, -1),
        "joint_vel": sq(s.joint_vel, ref["joint_vel"]),
        "body_pos": sq(s.kp_pos_w, ref["kp_pos"]).mean(-1),
        "body_rot": (angle ** 2).mean(-1),
        "body_lin_vel": sq(s.kp_lin_vel_w, ref["kp_lin_vel"]).mean(-1),
        "body_ang_vel": sq(s.kp_ang_vel_w, ref["kp_ang_vel"]).mean(-1),
        "vr_3point": sq(s.kp_pos_w[:, vr], ref["kp_pos"][:, vr]).mean(-1),
        "feet_pos": sq(s.kp_pos_w[:, feet], ref["kp_pos"][:, feet]).mean(-1),
        "max_joint_pos": np.abs(dq).max(-1),
    }


def foot_contact(s: RobotState) -> np.ndarray:
    return np.linalg.norm(s.foot_force_w, axis=-1) >= 1.0  # (N, 2)


def penalties(s: RobotState, action: np.ndarray, last_action: np.ndarray, air_time_s: np.ndarray,
              joint_range: np.ndarray) -> dict[str, np.ndarray]:
    """Per-env penalty values (N,), before weights and the curriculum scale."""
    qlo, qhi = soft_limits(joint_range[:, 0], joint_range[:, 1])
    vlim = SOFT_LIMIT_FACTOR * g1.VELOCITY_LIMIT_RAD_S
    tlim = SOFT_LIMIT_FACTOR * g1.EFFORT_LIMIT_NM
    force = np.linalg.norm(s.foot_force_w, axis=-1)
    contact = force >= 1.0
    foot_vel_xy = s.kp_lin_vel_w[:, list(g1.FEET_KEYPOINTS), :2]
    return {
        "joint_pos_limit": ((s.joint_pos < qlo) | (s.joint_pos > qhi)).sum(-1).astype(float),
        "joint_vel_limit": (np.abs(s.joint_vel) > vlim).sum(-1).astype(float),
        "torque_limit": (np.abs(s.torque) > tlim).sum(-1).astype(float),
        "foot_slip": (np.sum(foot_vel_xy ** 2, -1) * contact).sum(-1),
        # Table 10 prints min(||F - 400||^2, 0), which is identically zero; PBHC's term is the excess
        # over 400 N, which is what this is
        "foot_force": np.clip(force - FOOT_FORCE_LIMIT_N, 0.0, None).sum(-1),
        "air_time": (air_time_s > AIR_TIME_LIMIT_S).sum(-1).astype(float),
        "stumble": (np.linalg.norm(s.foot_force_w[..., :2], axis=-1) > 5 * np.abs(s.foot_force_w[..., 2])).sum(-1)
        .astype(float),
        "torque": np.sum(s.torque ** 2, -1),
        "action_rate": np.sum((action - last_action) ** 2, -1),
        "collision": s.self_collision.astype(float),
    }


def total_reward(errors: dict[str, np.ndarray], sigma: dict[str, float], contact: np.ndarray, ref_contact: np.ndarray,
                 pens: dict[str, np.ndarray], penalty_scale: float, terminated: np.ndarray) -> tuple[np.ndarray, dict]:
    """Weighted sum per env, and each weighted term (for logging and tests)."""
    terms = {k: TASK_WEIGHTS[k] * np.exp(-errors[k] / sigma[k]) for k in INITIAL_SIGMA}
    terms["contact_mask"] = TASK_WEIGHTS["contact_mask"] * (1 - np.abs(contact - ref_contact).sum(-1) / 2)
    for k, v in pens.items():
        terms[k] = penalty_scale * PENALTY_WEIGHTS[k] * v
    terms["termination"] = TERMINATION_WEIGHT * terminated.astype(float)
    return sum(terms.values()), terms


MAX_TASK_REWARD = sum(TASK_WEIGHTS.values())


# ------------------------------------------------------------------------------------------------
# The "mjlab" reward set: BeyondMimic's tracking rewards as mjlab's tracking task writes them
# (mjlab/tasks/tracking/tracking_env_cfg.py): exp(-e / std^2) of mean squared errors with fixed stds,
# the anchor (torso) in the world, the bodies relative to the anchor's yaw frame, and three small
# penalties; no termination penalty (an episode that ends early simply collects no more reward).
# Sharp, adaptive sigmas and a -200 termination term (the paper set above) give a policy that falls
# nothing to climb at a CPU-sized batch; these wide kernels reward every centimetre closer.
ANCHOR_KEYPOINT = 15  # torso_link, mjlab's G1 anchor body
MJLAB_STD = {"anchor_pos": 0.3, "anchor_ori": 0.4, "body_pos": 0.3, "body_ori": 0.4, "body_lin_vel": 1.0,
             "body_ang_vel": 3.14}
MJLAB_WEIGHTS = {"anchor_pos": 0.5, "anchor_ori": 0.5, "body_pos": 1.0, "body_ori": 1.0, "body_lin_vel": 1.0,
                 "body_ang_vel": 1.0, "action_rate": -0.1, "joint_limit": -10.0, "self_collision": -10.0}
MJLAB_MAX_TASK_REWARD = sum(w for w in MJLAB_WEIGHTS.values() if w > 0)


def _yaw(rot: np.ndarray) -> np.ndarray:
    return np.arctan2(rot[..., 1, 0], rot[..., 0, 0])


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1], out[..., 2, 2] = c, -s, s, c, 1.0
    return out


def mjlab_errors(s: RobotState, ref: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-env errors (N,) of the mjlab tracking terms [m^2, rad^2, (m/s)^2, (rad/s)^2]."""
    a = ANCHOR_KEYPOINT
    ref_rot = ref["kp_rot"] if "kp_rot" in ref else quat_wxyz_to_matrix(ref["kp_quat"])
    rot = s.kp_rot
    angle = lambda r_ref, r: np.linalg.norm(matrix_to_axis_angle(np.swapaxes(r_ref, -1, -2) @ r), axis=-1)  # noqa: E731
    # the reference bodies carried to the robot's anchor: its xy, the reference's height, the robot's heading
    delta = _rot_z(_yaw(rot[:, a]) - _yaw(ref_rot[:, a]))  # (N, 3, 3)
    origin = np.concatenate([s.kp_pos_w[:, a, :2], ref["kp_pos"][:, a, 2:]], -1)
    body_rel = origin[:, None, :] + np.einsum("nij,nkj->nki", delta, ref["kp_pos"] - ref["kp_pos"][:, a:a + 1])
    ori_rel = delta[:, None] @ ref_rot
    sq = lambda x, y: np.sum((x - y) ** 2, -1)  # noqa: E731
    return {"anchor_pos": sq(s.kp_pos_w[:, a], ref["kp_pos"][:, a]),
            "anchor_ori": angle(ref_rot[:, a], rot[:, a]) ** 2,
            "body_pos": sq(body_rel, s.kp_pos_w).mean(-1),
            "body_ori": (angle(ori_rel, rot) ** 2).mean(-1),
            "body_lin_vel": sq(s.kp_lin_vel_w, ref["kp_lin_vel"]).mean(-1),
            "body_ang_vel": sq(s.kp_ang_vel_w, ref["kp_ang_vel"]).mean(-1)}


def mjlab_reward(errors: dict[str, np.ndarray], s: RobotState, action: np.ndarray, last_action: np.ndarray,
                 joint_range: np.ndarray) -> tuple[np.ndarray, dict]:
    """The weighted sum per env of the mjlab set, and each weighted term; the penalties are in the
    policy's action units (action rate), radians past the soft joint range, and colliding worlds."""
    terms = {k: MJLAB_WEIGHTS[k] * np.exp(-errors[k] / MJLAB_STD[k] ** 2) for k in MJLAB_STD}
    qlo, qhi = soft_limits(joint_range[:, 0], joint_range[:, 1])
    terms["action_rate"] = MJLAB_WEIGHTS["action_rate"] * np.sum((action - last_action) ** 2, -1)
    terms["joint_limit"] = MJLAB_WEIGHTS["joint_limit"] * (np.clip(qlo - s.joint_pos, 0, None)
                                                           + np.clip(s.joint_pos - qhi, 0, None)).sum(-1)
    terms["self_collision"] = MJLAB_WEIGHTS["self_collision"] * s.self_collision.astype(float)
    return sum(terms.values()), terms
