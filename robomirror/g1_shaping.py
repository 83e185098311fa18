"""Policy action -> motor targets: the one shaping that the policy env and the robot runtime both apply.

numpy only (the runtime imports it on a Jetson). Every array is in motor order (the 29 motors of
`g1_contract.G1_29DOF_JOINTS`: the 23 policy joints, default + action_scale * action, and the six
wrists held at `LOCKED_JOINT_POS_RAD`), with any leading batch shape (the env shapes all its worlds
at once). Three stages, in this order, each reported per joint when it changes a target:

1. `rate`: a target moves at most `rate_limit_scale` x the motor's velocity limit x dt per cycle
   (Unitree's motor figures, `g1_contract.MOTOR_LIMITS`: 20-37 rad/s);
2. `torque`: the target is kept where the PD's torque estimate kp (q* - q) - kd dq stays within the
   motor's effort limit (the same figures);
3. `range`: the target is clamped into `range_alpha` of the joint range (the Menagerie MJCF's;
   alpha 1 by default, as the retargeter's references reach the hard limits: DeepMimic's kick, punch
   and cartwheel put the ankle roll on its stop), last, so no target outside the joint's range ever
   goes on the wire, whatever q was.

What goes back into the observation is the policy's raw action, in training and on the robot alike;
the shaped target only drives the motors. The envelope is there to catch what training never
produces: replaying the reference joint motion of the most dynamic clips through it changes nothing
(tested), and the env applies it too, so a policy is trained under exactly what the runtime does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robomirror import g1_contract as g1

STAGES = ("rate", "torque", "range")


@dataclass(frozen=True)
class ShapingConfig:
    range_alpha: float = 1.0  # of the joint range about its midpoint
    # x the motor velocity limit: a PD target leads the joint it drives. The retargeter's references
    # move at most at the velocity limit (its IK bounds them there), so 2x leaves them untouched.
    rate_limit_scale: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.range_alpha <= 1.0:
            raise ValueError(f"range_alpha must be in (0, 1], got {self.range_alpha}")
        if not self.rate_limit_scale > 0.0:
            raise ValueError(f"rate_limit_scale must be > 0, got {self.rate_limit_scale}")


class Shaping:
    """Stateless: callers keep the previous target (the rate limit's reference) and the clip counts."""

    def __init__(self, cfg: ShapingConfig = ShapingConfig()) -> None:
        self.cfg = cfg
        self.lo_rad, self.hi_rad = g1.soft_range(cfg.range_alpha, g1.MOTOR_RANGE_RAD)
        self.rate_rad_s = cfg.rate_limit_scale * g1.MOTOR_VELOCITY_LIMIT_RAD_S
        self.effort_nm = g1.MOTOR_EFFORT_LIMIT_NM

    def __call__(self, target_rad: np.ndarray, prev_target_rad: np.ndarray, q_rad: np.ndarray, dq_rad_s: np.ndarray,
                 kp: np.ndarray, kd: np.ndarray, dt_s: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(..., 29) motor targets -> (shaped targets, {stage: (..., 29) bool, True where it changed one})."""
        step = self.rate_rad_s * dt_s
        rated = np.clip(target_rad, prev_target_rad - step, prev_target_rad + step)
        # kp (q* - q) - kd dq in [-effort, effort]  <=>  q* in q + ([-effort, effort] + kd dq) / kp
        bounded = np.clip(rated, q_rad + (-self.effort_nm + kd * dq_rad_s) / kp,
                          q_rad + (self.effort_nm + kd * dq_rad_s) / kp)
        out = np.clip(bounded, self.lo_rad, self.hi_rad)
        return out, {"rate": rated != target_rad, "torque": bounded != rated, "range": out != bounded}


def motor_targets(action: np.ndarray) -> np.ndarray:
    """(..., 23) policy actions -> (..., 29) motor targets before shaping: default + scale x action, wrists held."""
    return g1.motor_vector(g1.target_from_action(action), g1.LOCKED_JOINT_POS_RAD)


def motor_gains(kp_policy: np.ndarray, kd_policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The policy's (23,) gains with the held wrists' own -> (29,) in motor order."""
    return g1.motor_vector(kp_policy, g1.LOCKED_KP), g1.motor_vector(kd_policy, g1.LOCKED_KD)


class ClipCounter:
    """How many cycles each stage changed each motor's target (summed over worlds in the env)."""

    def __init__(self) -> None:
        self.cycles = 0
        self.per_joint = {s: np.zeros(len(g1.G1_29DOF_JOINTS), dtype=np.int64) for s in STAGES}

    def add(self, masks: dict[str, np.ndarray]) -> None:
        for s in STAGES:
            m = np.asarray(masks[s])
            self.per_joint[s] += m.reshape(-1, m.shape[-1]).sum(0)
        self.cycles += int(np.prod(np.asarray(masks[STAGES[0]]).shape[:-1], dtype=np.int64))

    def total(self) -> dict[str, int]:
        return {s: int(v.sum()) for s, v in self.per_joint.items()}

    def as_json(self) -> dict:
        """{stage: {joint: cycles}} for the joints it touched, and the cycle count."""
        return {"cycles": self.cycles, **{s: {j: int(n) for j, n in zip(g1.G1_29DOF_JOINTS, v, strict=True) if n}
                                          for s, v in self.per_joint.items()}}
