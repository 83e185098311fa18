"""CoM/CoP stability filter (the KungfuBot/PBHC criterion).

Per frame: the CoM from the robot's link masses; the CoP estimated from kinematics as the
pressure-weighted mean of points on the feet, with weight 1 - k*h below the ground and exp(-w*h)
above (h = point height [m]); dd_t = horizontal distance CoM-CoP. A frame is stable when
dd_t < eps. A clip passes when its first and last frames are stable and its longest run of
unstable frames is shorter than `max_unstable_run`. The filter never deletes: it reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from retarget.robot import G1


@dataclass(frozen=True)
class StabilityConfig:
    k_below: float = 100.0  # weight slope below the ground [1/m]
    w_above: float = 10.0  # weight decay above the ground [1/m]
    eps_m: float = 0.1  # a frame is stable when CoM-CoP < eps [m]
    max_unstable_run: int = 100  # a clip fails at this many consecutive unstable frames


@dataclass(frozen=True)
class StabilityVerdict:
    passed: bool
    reason: str  # "ok", "non_finite_metric", "first_frame_unstable", "last_frame_unstable", "unstable_run"
    longest_unstable_run: int
    unstable_fraction: float
    dd_mean_m: float
    dd_max_m: float
    dd_p95_m: float

    def as_dict(self) -> dict:
        return asdict(self)


def pressure_weights(h: np.ndarray, cfg: StabilityConfig) -> np.ndarray:
    return np.where(h < 0, 1.0 - cfg.k_below * h, np.exp(-cfg.w_above * h))


def cop_xy(points_w: np.ndarray, cfg: StabilityConfig) -> np.ndarray:
    """points_w: (T, P, 3) foot points -> (T, 2) estimated CoP."""
    w = pressure_weights(points_w[..., 2], cfg)
    return (w[..., None] * points_w[..., :2]).sum(1) / w.sum(1)[..., None]


def longest_run(mask: np.ndarray) -> int:
    best = cur = 0
    for m in mask:
        cur = cur + 1 if m else 0
        best = max(best, cur)
    return best


def verdict(dd: np.ndarray, cfg: StabilityConfig) -> StabilityVerdict:
    unstable = ~(dd < cfg.eps_m)  # a NaN distance (no foot weight: the feet far off the ground) is not stable
    run = longest_run(unstable)
    if not np.all(np.isfinite(dd)):
        passed, reason = False, "non_finite_metric"
    elif unstable[0]:
        passed, reason = False, "first_frame_unstable"
    elif unstable[-1]:
        passed, reason = False, "last_frame_unstable"
    elif run >= cfg.max_unstable_run:
        passed, reason = False, "unstable_run"
    else:
        passed, reason = True, "ok"
    return StabilityVerdict(passed, reason, run, float(unstable.mean()), float(dd.mean()), float(dd.max()),
                            float(np.percentile(dd, 95)))


def foot_points(robot: G1, qpos: np.ndarray) -> np.ndarray:
    """Bottom points of both capsule ends of every foot collision geom: (T, P, 3)."""
    geoms = robot.foot_geoms["left"] + robot.foot_geoms["right"]
    out = np.empty((len(qpos), 2 * len(geoms), 3))
    for i, q in enumerate(qpos):
        robot.forward(q)
        for k, g in enumerate(geoms):
            axis = robot.mj_data.geom_xmat[g].reshape(3, 3)[:, 2]
            half, rad = robot.mj.geom_size[g, 1], robot.mj.geom_size[g, 0]
            c = robot.mj_data.geom_xpos[g]
            for e, sgn in enumerate((-1.0, 1.0)):
                p = c + sgn * half * axis
                out[i, 2 * k + e] = (p[0], p[1], p[2] - rad)
    return out


def com_cop_distance(robot: G1, qpos: np.ndarray, cfg: StabilityConfig = StabilityConfig()) -> np.ndarray:
    com = robot.com(qpos)
    return np.linalg.norm(com[:, :2] - cop_xy(foot_points(robot, qpos), cfg), axis=-1)


def assess(robot: G1, qpos: np.ndarray, cfg: StabilityConfig = StabilityConfig()) -> StabilityVerdict:
    return verdict(com_cop_distance(robot, qpos, cfg), cfg)
