"""The two curricula of the paper's appendix (after PBHC), updated once per env step."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TerminationCurriculum:
    """theta [m]: mean keypoint deviation that ends an episode; tightens as training goes on."""

    theta: float = 1.5
    theta_min: float = 0.3
    theta_max: float = 2.0
    decay: float = 2.5e-5

    def step(self) -> float:
        self.theta = min(max(self.theta * (1.0 - self.decay), self.theta_min), self.theta_max)
        return self.theta


@dataclass
class PenaltyCurriculum:
    """alpha: the scale on every regularization penalty; grows from 0.1 to 1."""

    alpha: float = 0.1
    alpha_min: float = 0.0
    alpha_max: float = 1.0
    growth: float = 1.0e-4

    def step(self) -> float:
        self.alpha = min(max(self.alpha * (1.0 + self.growth), self.alpha_min), self.alpha_max)
        return self.alpha


def state_dict(*curricula) -> list[dict]:
    return [asdict(c) for c in curricula]
