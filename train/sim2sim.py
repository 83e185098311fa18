"""Tracking evaluation: Succ, E_mpjpe [rad], E_mpkpe [m] per clip, in either simulator setup.

Every clip runs once from its first frame with nominal physics (no randomization, no pushes) until
its end or a failure: the mean keypoint deviation above 0.5 m, or the root tilt differing from the
reference's by more than 1 rad (terminations.py). Errors are averaged over the steps tracked.
`train` is the training setup; `sim2sim` is the cross-simulator stand-in (dt 0.002 s, decimation 10,
PD outside the actuator model): the deploy sim backend's very model, so a policy steps the same there
through the robot runtime (tests/deploy/test_parity.py). Both shape actions as the runtime does.
A clip performed on a scene (issue 22) plays on its scene's geometry (from the same reference-state
start) and its result says its ground: the scene's kind ('stairs', 'bench', 'slope', 'boxes',
'terrain'), or 'flat'. `summarize(results, by_ground=True)` reports all clips, the flat ones, the scene
ones together and each scene kind apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from train.env.motion_library import MotionLibrary
from train.env.tracking_env import EnvConfig, TrackingEnv


@dataclass
class ClipResult:
    clip_id: str
    success: bool
    mpjpe_rad: float
    mpkpe_m: float
    steps: int
    joint_err_rad: np.ndarray  # (23,) mean |q - q_ref| per joint
    qpos: np.ndarray | None = None  # (T, nq) of env 0's world, for videos
    ground: str = "flat"  # 'flat' or the scene's kind (stairs, bench, ...): what the clip is performed and played on


def ground_of(library: MotionLibrary, clip: int) -> str:
    """'flat', or the kind of the scene clip `clip` of the library was performed on."""
    k = int(library.scene_of_clip[clip])
    return "flat" if k < 0 else library.scenes[k].kind


def evaluate(policy: Callable[[dict], torch.Tensor], library: MotionLibrary, sim: str = "train",
             record: bool = False, height_map: bool = False) -> list[ClipResult]:
    """Run every clip of the library once, one env per clip; height_map: the observations carry the
    contract's terrain slice (for a policy trained with it)."""
    n = library.n_clips
    env = TrackingEnv(library, EnvConfig(num_envs=n, height_map=height_map).evaluation(sim))
    env.reset(np.arange(n), clips=np.arange(n), frames=np.zeros(n, dtype=int))
    if hasattr(policy, "bind"):  # a controller that reads the simulator's state (train.balance_prior), not a network
        policy.bind(env)
    obs = env.get_observations()
    active = np.ones(n, dtype=bool)
    success = np.zeros(n, dtype=bool)
    sums = np.zeros((n, 2))
    joint = np.zeros((n, 23))
    steps = np.zeros(n, dtype=int)
    qpos = [[d.qpos.copy()] for d in env.datas] if record else None
    while active.any():
        with torch.no_grad():
            act = policy(obs)
        obs, _, done, extras = env.step(act)
        m = extras["metrics"]
        sums[active, 0] += m["mpjpe_rad"][active]
        sums[active, 1] += m["mpkpe_m"][active]
        joint[active] += m["joint_abs_err_rad"][active]
        steps[active] += 1
        d = done.numpy()
        if record:
            for i in np.flatnonzero(active & ~d):
                qpos[i].append(env.datas[i].qpos.copy())
        finished = active & d
        success[finished] = ~extras["terminated"][finished]
        active &= ~d
    return [ClipResult(library.clip_ids[i], bool(success[i]), float(sums[i, 0] / steps[i]),
                       float(sums[i, 1] / steps[i]), int(steps[i]), joint[i] / steps[i], np.stack(qpos[i]) if record else None,
                       ground_of(library, i))
            for i in range(n)]


def summarize(results: list[ClipResult], by_ground: bool = False) -> dict:
    """Succ, E_mpjpe [rad], E_mpkpe [m] over the clips; by_ground: {"all": ..., "flat": ..., "scene": ...,
    then one entry per scene kind present ("bench", "stairs", ... sorted)}: "scene" is every clip on a scene;
    "flat" and "scene" are always there, with clips 0 and null metrics when no clip is on that ground."""
    if by_ground:
        kinds = sorted({r.ground for r in results} - {"flat"})
        return ({"all": summarize(results), "flat": summarize([r for r in results if r.ground == "flat"]),
                 "scene": summarize([r for r in results if r.ground != "flat"])}
                | {k: summarize([r for r in results if r.ground == k]) for k in kinds})
    if not results:
        return {"succ": None, "mpjpe_rad": None, "mpkpe_m": None, "clips": 0}
    return {"succ": float(np.mean([r.success for r in results])),
            "mpjpe_rad": float(np.mean([r.mpjpe_rad for r in results])),
            "mpkpe_m": float(np.mean([r.mpkpe_m for r in results])), "clips": len(results)}
