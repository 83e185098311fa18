"""What stands between a policy and a real robot: modes, fault rules and the named thresholds.

Modes: RAMP (start-up: targets move from the measured pose to the default pose over `ramp_s`), HOLD
(no fresh motion latent: stand in the default pose, and say so), POLICY, DAMPING (kp = 0, kd only,
latched until `reset`). Faults latch DAMPING in the cycle they are seen, each with its reason:
- the low state: NaN/inf anywhere; a joint measured outside its range by more than
  `state_range_margin_rad` or faster than `state_velocity_factor` x its motor's velocity limit (a
  sensor or decode fault, not a pose); an IMU quaternion off unit norm; a tick unchanged for
  `state_stale_cycles` cycles;
- a fall: the IMU's projected gravity tilted more than `fall_tilt_rad` from upright, or the pelvis
  below `fall_pelvis_height_m` where the backend knows its height (the sim does; a robot does not);
- timing: a wake-up later than `late_fault_ms`, or `overrun_limit` overruns in a row (compute over the
  period, or a wake-up later than `late_wake_ms`);
- NaN/inf in the observation or the action; the e-stop.
Any exception in a cycle is a fault too (deploy.runtime sends damping before it propagates).
The shaping of targets is not here: it is `robomirror.g1_shaping`, shared with the policy env.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from robomirror import g1_contract as g1
from robomirror.g1_shaping import ShapingConfig


class Mode(enum.Enum):
    RAMP = "ramp"
    HOLD = "hold"
    POLICY = "policy"
    DAMPING = "damping"


@dataclass(frozen=True)
class SafetyConfig:
    ramp_s: float = 2.0  # 0: no ramp (the robot already stands at the start pose, e.g. a parity test)
    latent_stale_s: float = 1.0  # a motion latent older than this is stale: HOLD
    latent_future_s: float = 0.5  # a latent stamped further ahead of our wall clock is refused
    state_stale_cycles: int = 5
    state_range_margin_rad: float = 0.2
    state_velocity_factor: float = 3.0
    quat_norm_tolerance: float = 0.1
    fall_tilt_rad: float | None = 1.0  # None: off (acrobatics that turn the pelvis over)
    fall_pelvis_height_m: float | None = 0.3
    overrun_limit: int = 3
    late_wake_ms: float = 5.0
    late_fault_ms: float = 40.0  # two commands missed
    damping_kd: float = 3.0  # [N m s/rad] on every motor in DAMPING
    shaping: ShapingConfig = field(default_factory=ShapingConfig)


@dataclass
class Transition:
    t_s: float
    from_mode: str
    to_mode: str
    reason: str


def tilt_rad(imu_quat_wxyz: np.ndarray) -> float:
    """Angle between the pelvis's up axis and the world's, from the IMU's projected gravity."""
    gz = float(g1.projected_gravity_b(imu_quat_wxyz)[2])  # -1 upright
    return float(np.arccos(np.clip(-gz, -1.0, 1.0)))


@dataclass
class Safety:
    cfg: SafetyConfig = field(default_factory=SafetyConfig)
    mode: Mode = Mode.RAMP
    transitions: list[Transition] = field(default_factory=list)
    overruns_in_a_row: int = 0
    overruns: int = 0
    last_tick: int | None = None
    same_tick_cycles: int = 0
    fault_reason: str | None = None  # the latched fault's reason, None when none

    def to(self, mode: Mode, reason: str, t_s: float) -> None:
        if mode == self.mode or (self.mode == Mode.DAMPING and mode != Mode.DAMPING):
            return  # DAMPING latches until reset()
        self.transitions.append(Transition(t_s, self.mode.value, mode.value, reason))
        self.mode = mode

    def fault(self, reason: str, t_s: float) -> None:
        if self.mode != Mode.DAMPING:
            self.fault_reason = reason
        self.to(Mode.DAMPING, reason, t_s)

    def reset(self, t_s: float) -> None:
        self.transitions.append(Transition(t_s, self.mode.value, Mode.RAMP.value, "reset by the operator"))
        self.mode, self.overruns_in_a_row, self.same_tick_cycles, self.fault_reason = Mode.RAMP, 0, 0, None

    def check_state(self, tick: int, q29: np.ndarray, dq29: np.ndarray, gyro: np.ndarray, quat: np.ndarray,
                    t_s: float, pelvis_height_m: float | None = None) -> None:
        c = self.cfg
        if any(not np.all(np.isfinite(a)) for a in (q29, dq29, gyro, quat)):
            self.fault("NaN/inf in the low state", t_s)
            return
        lo, hi = g1.MOTOR_RANGE_RAD[:, 0] - c.state_range_margin_rad, g1.MOTOR_RANGE_RAD[:, 1] + c.state_range_margin_rad
        out = np.flatnonzero((q29 < lo) | (q29 > hi))
        if len(out):
            j = out[0]
            self.fault(f"{g1.G1_29DOF_JOINTS[j]} measured at {q29[j]:.3f} rad, outside its range "
                       f"[{g1.MOTOR_RANGE_RAD[j, 0]:.3f}, {g1.MOTOR_RANGE_RAD[j, 1]:.3f}] by more than "
                       f"{c.state_range_margin_rad} rad (an encoder or message fault)", t_s)
        fast = np.flatnonzero(np.abs(dq29) > c.state_velocity_factor * g1.MOTOR_VELOCITY_LIMIT_RAD_S)
        if len(fast):
            j = fast[0]
            self.fault(f"{g1.G1_29DOF_JOINTS[j]} measured at {dq29[j]:.1f} rad/s, over {c.state_velocity_factor} x "
                       f"its motor's {g1.MOTOR_VELOCITY_LIMIT_RAD_S[j]:.0f} rad/s limit", t_s)
        norm = float(np.linalg.norm(quat))
        if abs(norm - 1.0) > c.quat_norm_tolerance:
            self.fault(f"IMU quaternion of norm {norm:.3f} (expected 1 +- {c.quat_norm_tolerance})", t_s)
        elif c.fall_tilt_rad is not None and (tilt := tilt_rad(quat)) > c.fall_tilt_rad:
            self.fault(f"fall: pelvis tilted {tilt:.2f} rad from upright (limit fall_tilt_rad {c.fall_tilt_rad})", t_s)
        if c.fall_pelvis_height_m is not None and pelvis_height_m is not None and pelvis_height_m < c.fall_pelvis_height_m:
            self.fault(f"fall: pelvis at {pelvis_height_m:.2f} m (limit fall_pelvis_height_m {c.fall_pelvis_height_m})", t_s)
        if self.last_tick is not None and tick == self.last_tick:
            self.same_tick_cycles += 1
            if self.same_tick_cycles >= c.state_stale_cycles:
                self.fault(f"low state stale: tick {tick} unchanged for {self.same_tick_cycles} cycles", t_s)
        else:
            self.same_tick_cycles = 0
        self.last_tick = tick

    def check_finite(self, what: str, x: np.ndarray, t_s: float) -> bool:
        if not np.all(np.isfinite(x)):
            self.fault(f"NaN/inf in the {what}", t_s)
            return False
        return True

    def timing(self, compute_ms: float, late_ms: float, period_ms: float, t_s: float) -> None:
        """One cycle's compute time and how late it woke; faults per the config."""
        c = self.cfg
        if late_ms > c.late_fault_ms:
            self.fault(f"the loop woke {late_ms:.1f} ms late (limit late_fault_ms {c.late_fault_ms})", t_s)
        overran = compute_ms > period_ms or late_ms > c.late_wake_ms
        self.overruns += int(overran)
        self.overruns_in_a_row = self.overruns_in_a_row + 1 if overran else 0
        if self.overruns_in_a_row >= c.overrun_limit:
            self.fault(f"{self.overruns_in_a_row} overruns in a row (last: compute {compute_ms:.1f} ms, woke "
                       f"{late_ms:.1f} ms late; period {period_ms:.0f} ms)", t_s)
