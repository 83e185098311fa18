"""What stands between a policy and a real robot: modes, fault rules and target shaping.

Modes: RAMP (start-up: targets move from the measured pose to the default pose over `ramp_s`), HOLD
(no fresh motion latent: stand in the default pose, and say so), POLICY, DAMPING (kp = 0, kd only,
latched until `reset`). Faults that latch DAMPING in the cycle they are seen: NaN/inf in the low
state, observation or action; a low state whose tick has not advanced for `state_stale_cycles`
cycles; `overrun_limit` deadline overruns in a row; the e-stop. Every transition is logged with its
reason. Targets are clamped to the soft joint range, rate limited per cycle, and limited so that the
PD's torque estimate kp (q* - q) - kd dq stays within each joint's effort limit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from robomirror import g1_contract as g1


class Mode(enum.Enum):
    RAMP = "ramp"
    HOLD = "hold"
    POLICY = "policy"
    DAMPING = "damping"


@dataclass(frozen=True)
class SafetyConfig:
    ramp_s: float = 2.0
    latent_stale_s: float = 1.0  # a motion latent older than this is stale: HOLD
    state_stale_cycles: int = 5
    overrun_limit: int = 3
    rate_limit_rad_s: float = 8.0
    soft_limit_alpha: float = 0.95
    damping_kd: float = 3.0  # [N m s/rad] on every motor in DAMPING


@dataclass
class Transition:
    t_s: float
    from_mode: str
    to_mode: str
    reason: str


@dataclass
class Safety:
    cfg: SafetyConfig = field(default_factory=SafetyConfig)
    mode: Mode = Mode.RAMP
    transitions: list[Transition] = field(default_factory=list)
    overruns_in_a_row: int = 0
    last_tick: int | None = None
    same_tick_cycles: int = 0
    clipped: dict[str, int] = field(default_factory=lambda: {"soft_limit": 0, "rate": 0, "torque": 0})

    def to(self, mode: Mode, reason: str, t_s: float) -> None:
        if mode == self.mode or (self.mode == Mode.DAMPING and mode != Mode.DAMPING):
            return  # DAMPING latches until reset()
        self.transitions.append(Transition(t_s, self.mode.value, mode.value, reason))
        self.mode = mode

    def fault(self, reason: str, t_s: float) -> None:
        self.to(Mode.DAMPING, reason, t_s)

    def reset(self, t_s: float) -> None:
        self.transitions.append(Transition(t_s, self.mode.value, Mode.RAMP.value, "reset by the operator"))
        self.mode, self.overruns_in_a_row, self.same_tick_cycles = Mode.RAMP, 0, 0

    def check_state(self, tick: int, arrays: list[np.ndarray], t_s: float) -> None:
        if any(not np.all(np.isfinite(a)) for a in arrays):
            self.fault("NaN/inf in the low state", t_s)
        if self.last_tick is not None and tick == self.last_tick:
            self.same_tick_cycles += 1
            if self.same_tick_cycles >= self.cfg.state_stale_cycles:
                self.fault(f"low state stale: tick {tick} unchanged for {self.same_tick_cycles} cycles", t_s)
        else:
            self.same_tick_cycles = 0
        self.last_tick = tick

    def check_finite(self, what: str, x: np.ndarray, t_s: float) -> bool:
        if not np.all(np.isfinite(x)):
            self.fault(f"NaN/inf in the {what}", t_s)
            return False
        return True

    def deadline(self, overran: bool, elapsed_ms: float, t_s: float) -> None:
        self.overruns_in_a_row = self.overruns_in_a_row + 1 if overran else 0
        if self.overruns_in_a_row >= self.cfg.overrun_limit:
            self.fault(f"{self.overruns_in_a_row} deadline overruns in a row (last {elapsed_ms:.1f} ms)", t_s)

    def shape(self, target: np.ndarray, previous: np.ndarray, q: np.ndarray, dq: np.ndarray, kp: np.ndarray,
              kd: np.ndarray, dt: float) -> np.ndarray:
        """Soft limits, then rate limit, then the torque bound (each counted when it bites)."""
        lo, hi = g1.soft_range(self.cfg.soft_limit_alpha)
        out = np.clip(target, lo, hi)
        self.clipped["soft_limit"] += int(np.any(out != target))
        step = self.cfg.rate_limit_rad_s * dt
        limited = np.clip(out, previous - step, previous + step)
        self.clipped["rate"] += int(np.any(limited != out))
        # kp (q* - q) - kd dq in [-effort, effort]  <=>  q* in q + ([-effort, effort] + kd dq) / kp
        t_lo = q + (-g1.EFFORT_LIMIT_NM + kd * dq) / kp
        t_hi = q + (g1.EFFORT_LIMIT_NM + kd * dq) / kp
        bounded = np.clip(limited, t_lo, t_hi)
        self.clipped["torque"] += int(np.any(bounded != limited))
        return bounded
