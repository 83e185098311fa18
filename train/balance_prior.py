"""A balance feedback prior for the teacher's warm start, its 12 gains tuned by the cross-entropy method.

Replaying a reference through the G1's PD falls within ~1.2 s even on a standing clip: the ankles' PD
(28.5 N m/rad) is far softer than the toppling stiffness of a 35 kg body (m g h ~ 240 N m/rad), so standing
needs feedback, which PPO on 64 CPU worlds did not find within its budget (README, policy-learn). This prior is
the classic ankle-and-hip strategy, linear in the robot's error against the reference, in the robot's heading
frame (x forward, y left):

    sagittal: ankle pitch += k0 pitch + k1 pitch_rate + k2 dx + k3 dvx;  hip pitch += k4 pitch + k5 pitch_rate
    lateral:  ankle roll  += k6 roll  + k7 roll_rate  + k8 dy + k9 dvy;  hip roll  += k10 roll + k11 roll_rate

pitch/roll: the pelvis' rotation from the reference's (axis-angle, heading frame); rates: the pelvis' angular
velocity minus the reference's; dx, dy: the pelvis over the feet' midpoint minus the reference's; dvx, dvy: the
pelvis' linear velocity minus the reference's. Both legs get the same correction [rad of joint target]. On top
of it: the inverse-dynamics offsets (teacher.inverse_dynamics_torques) that make the PD produce the
reference's torques.

`tune_gains` runs the cross-entropy method over the 12 gains: every candidate is one world per clip of one
batched env in the evaluation setup (the sim2sim model, nominal physics, every clip from its first frame:
what Succ measures), scored by the fraction of each clip tracked to its end minus its mean keypoint error.
The tuned prior is not the teacher: it is the target the MoE residual regresses to before PPO
(teacher.warm_start), a controller with no network whose result policy-learn reports in its own row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robomirror import g1_contract as g1
from robomirror.rotations import matrix_to_axis_angle, quat_wxyz_to_matrix
from train.env.terminations import END_EFFECTOR_KEYPOINTS

N_GAINS = 12
_J = {n: g1.POLICY_JOINTS.index(n) for n in g1.POLICY_JOINTS}
ANKLE_PITCH = np.array([_J["left_ankle_pitch_joint"], _J["right_ankle_pitch_joint"]])
HIP_PITCH = np.array([_J["left_hip_pitch_joint"], _J["right_hip_pitch_joint"]])
ANKLE_ROLL = np.array([_J["left_ankle_roll_joint"], _J["right_ankle_roll_joint"]])
HIP_ROLL = np.array([_J["left_hip_roll_joint"], _J["right_hip_roll_joint"]])
FEET = list(END_EFFECTOR_KEYPOINTS[:2])  # left, right ankle-roll keypoints


def _heading(rot: np.ndarray) -> np.ndarray:
    """(N, 2, 2) world xy -> heading frame xy, from the yaw of the (N, 3, 3) rotations."""
    yaw = np.arctan2(rot[:, 1, 0], rot[:, 0, 0])
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)


def errors(state, ref: dict) -> np.ndarray:
    """(N, 8): pitch, pitch_rate, dx, dvx, roll, roll_rate, dy, dvy of the robot against the reference frame."""
    rot = state.root_rot
    ref_rot = quat_wxyz_to_matrix(ref["root_quat"])
    h = _heading(rot)
    tilt_w = matrix_to_axis_angle(rot @ np.swapaxes(ref_rot, -1, -2))  # reference -> robot, world axes
    ang_w = np.einsum("nij,nj->ni", rot, state.root_ang_vel_b) - ref["root_ang_vel"]
    com = state.root_pos_w[:, :2] - state.kp_pos_w[:, FEET, :2].mean(1)
    ref_com = ref["root_pos"][:, :2] - ref["kp_pos"][:, FEET, :2].mean(1)
    to_h = lambda v: np.einsum("nij,nj->ni", h, v[:, :2])  # noqa: E731
    t, w, p, v = (to_h(tilt_w), to_h(ang_w), to_h(com - ref_com),
                  to_h(state.root_lin_vel_w - ref["root_lin_vel"]))
    return np.stack([t[:, 1], w[:, 1], p[:, 0], v[:, 0], t[:, 0], w[:, 0], p[:, 1], v[:, 1]], -1)


def feedback(gains: np.ndarray, err: np.ndarray) -> np.ndarray:
    """(N, 23) joint target corrections [rad] for (N, 12) or (12,) gains and (N, 8) errors."""
    k = np.broadcast_to(gains, (len(err), N_GAINS))
    out = np.zeros((len(err), g1.N_ACT))
    sag, lat = err[:, :4], err[:, 4:]
    out[:, ANKLE_PITCH] = np.sum(k[:, 0:4] * sag, -1)[:, None]
    out[:, HIP_PITCH] = np.sum(k[:, 4:6] * sag[:, :2], -1)[:, None]
    out[:, ANKLE_ROLL] = np.sum(k[:, 6:10] * lat, -1)[:, None]
    out[:, HIP_ROLL] = np.sum(k[:, 10:12] * lat[:, :2], -1)[:, None]
    return out


@dataclass
class BalancePrior:
    """The action (N, 23, action units) of the prior in an env: reference + inverse-dynamics offset + feedback."""

    gains: np.ndarray  # (12,) or (N, 12)
    offset: np.ndarray  # (F, 23) action units per library frame (teacher.warm_start's labels)

    def residual(self, env) -> np.ndarray:
        """What the teacher's residual regresses to: the offset of the next frame plus the feedback."""
        lib = env.library
        idx = lib.starts[env.clip] + np.clip(env.frame + 1, 0, lib.lengths[env.clip] - 1)
        ref = lib.frame(env.clip, env.frame)
        return self.offset[idx] + feedback(self.gains, errors(env.state, ref)) / g1.ACTION_SCALE

    def action(self, env, obs) -> torch.Tensor:
        return obs["residual_base"] + torch.as_tensor(self.residual(env), dtype=torch.float32)


class PriorPolicy:
    """The prior as an evaluation policy (train.sim2sim.evaluate binds it to its env before the rollout)."""

    def __init__(self, gains, offset: np.ndarray) -> None:
        self.prior, self.env = BalancePrior(np.asarray(gains, dtype=float), offset), None

    def bind(self, env) -> None:
        self.env = env

    def __call__(self, obs) -> torch.Tensor:
        return self.prior.action(self.env, obs)


def id_offsets(library, model) -> np.ndarray:
    """(F, 23) the PD offsets [action units] that make the reference's inverse-dynamics torques (the teacher's
    default warm-start target, teacher.inverse_dynamics_offsets)."""
    from train.teacher import inverse_dynamics_offsets

    return inverse_dynamics_offsets(library, model)


def rollout_scores(library, gains: np.ndarray, offset: np.ndarray, sim: str = "sim2sim") -> np.ndarray:
    """(P, C) score of P gain vectors on each of the C clips, from frame 0, nominal physics: the fraction of the
    clip tracked before a Succ failure minus the mean keypoint error [m] over the steps tracked."""
    from train.env.tracking_env import EnvConfig, TrackingEnv

    p, c = len(gains), library.n_clips
    n = p * c
    clips = np.tile(np.arange(c), p)
    env = TrackingEnv(library, EnvConfig(num_envs=n).evaluation(sim))
    env.reset(np.arange(n), clips=clips, frames=np.zeros(n, dtype=int))
    prior = BalancePrior(np.repeat(gains, c, axis=0), offset)
    obs = env.get_observations()
    active = np.ones(n, dtype=bool)
    steps, err_sum, failed = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    while active.any():
        obs, _, done, extras = env.step(prior.action(env, obs))
        steps[active] += 1
        err_sum[active] += extras["metrics"]["mpkpe_m"][active]
        d = done.numpy()
        failed |= active & d & extras["terminated"]
        active &= ~d
    frac = steps / np.maximum(library.lengths[clips] - 1, 1)
    score = np.where(failed, frac, 1.0) - err_sum / np.maximum(steps, 1)
    return score.reshape(p, c)


def tune_gains(library, model, generations: int = 10, population: int = 32, elite: int = 6, seed: int = 0,
               init_std: float = 1.0, progress=None) -> dict:
    """Cross-entropy method over the 12 gains (start: zeros, std `init_std` rad per unit error). Returns the
    best gains seen, their per-clip scores and the history of (generation, best, elite mean)."""
    rng = np.random.default_rng(seed)
    offset = id_offsets(library, model)
    mean, std = np.zeros(N_GAINS), np.full(N_GAINS, init_std)
    best, best_score, history = mean.copy(), -np.inf, []
    for gen in range(generations):
        cand = mean + std * rng.standard_normal((population, N_GAINS))
        cand[0] = best if np.isfinite(best_score) else mean  # the incumbent is always re-scored
        per_clip = rollout_scores(library, cand, offset)
        total = per_clip.mean(1)
        order = np.argsort(-total)
        if total[order[0]] > best_score:
            best, best_score = cand[order[0]].copy(), float(total[order[0]])
        el = cand[order[:elite]]
        mean, std = el.mean(0), el.std(0) + 0.02
        history.append({"generation": gen, "best": best_score, "elite_mean": float(total[order[:elite]].mean())})
        if progress:
            progress(history[-1])
    return {"gains": best.tolist(), "score": best_score, "history": history}
