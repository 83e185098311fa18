"""A walking demonstrator for the teacher's warm start: receding-horizon CEM over joint-target corrections.

The balance prior (train.balance_prior) holds a standing clip, but on a walking clip it falls within
~0.8 s, as the replay floor does: a gait's lateral sway and single support need the stepping leg placed
where the body is going, which 12 linear ankle/hip gains on the error against the reference do not do.
This planner finds, for one clip from its first frame in the sim2sim setup (nominal physics: what Succ
measures), a time-varying correction on top of the prior: joint-target offsets [rad] on the legs and
the waist (the first `joints` policy joints), piecewise linear between knots every `knot_every` frames.

Receding horizon: the knots of a window of `horizon_knots` knots are sampled (CEM: `population` candidates
a generation, `generations` generations, the `elite` best refit the Gaussian; candidate 0 is the mean, 1
the best so far), each candidate one world of one batched sim2sim env that replays the committed knots
from the clip's first frame and then the candidate's; the window's first knot is committed and the window
slides on by one knot. A candidate's cost over its window: `fail_cost` per step not tracked (Succ's
failure: keypoint deviation above 0.5 m or tilt above 1 rad), plus its mean keypoint error [m] and
`tilt_weight` x its mean tilt error [rad]: half that of its noiseless rollout, half the mean over
`noise_rollouts` rollouts under fixed sequences of action noise (the same for every candidate): a plan
that only the exact actions keep up is one no network imitating it can follow. The committed corrections are deterministic (seeded; the
batch's worlds step bit-identically to one world alone), so the plan is a function of the clip, the
prior's gains and this config, and a run keeps it beside itself.

The plan is not a policy: it is indexed by frame, from one start. It is what the MoE teacher's warm start
regresses to (with the prior's feedback, on rollouts perturbed around it: DART), so that the network
tracks the walk from its own observations; the report names it as the teacher's demonstrator.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from robomirror import g1_contract as g1
from train.balance_prior import BalancePrior


@dataclass(frozen=True)
class PlanConfig:
    knot_every: int = 5  # frames between knots (0.1 s at 50 Hz)
    horizon_knots: int = 8  # the window: 0.8 s
    population: int = 48
    generations: int = 5
    elite: int = 6
    init_std_rad: float = 0.3
    min_std_rad: float = 0.01
    joints: int = 15  # the first policy joints corrected: legs (12) and waist (3); the arms follow the reference
    fail_cost: float = 0.1  # per policy step of the window not tracked
    tilt_weight: float = 0.3
    # robustness: every candidate also runs under `noise_rollouts` fixed sequences of Gaussian action noise
    # (`noise_std` action units, i.i.d. per step and joint; the same sequences for every candidate); its cost is
    # half its noiseless rollout's, half the noisy ones' mean. Without them the plan walked the clip on a knife
    # edge: 0.03 action units of noise (0.015 rad) felled it within 1.6 s, and so did a network's imitation
    # error. With the mean of 3 rollouts at 0.05 the noisy ones walked and the noiseless one fell at 125 of 145
    noise_rollouts: int = 2
    noise_std: float = 0.03
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.joints <= g1.N_ACT:
            raise ValueError(f"PlanConfig.joints must be in 1..{g1.N_ACT}, got {self.joints}")
        if self.knot_every < 1 or self.horizon_knots < 1:
            raise ValueError(f"knot_every and horizon_knots must be >= 1, got {self.knot_every}, {self.horizon_knots}")
        if self.noise_rollouts < 0 or self.noise_std < 0:
            raise ValueError(f"noise_rollouts and noise_std must be >= 0, got {self.noise_rollouts}, {self.noise_std}")
        if not 1 <= self.elite <= self.population - 2:
            raise ValueError(f"elite must be in 1..population-2, got {self.elite} of {self.population}")


def n_knots(length: int, knot_every: int) -> int:
    """Knots of a clip of `length` frames: one at frame 0 and one per `knot_every` frames past its last frame."""
    return (length - 1) // knot_every + 2


def knot_table(knots: np.ndarray, length: int, knot_every: int) -> np.ndarray:
    """(..., K, J) knots [rad] -> (..., length, 23) corrections [action units] per frame, linear between knots;
    joints past J get none."""
    f = np.arange(length) / knot_every
    i0 = np.minimum(f.astype(int), knots.shape[-2] - 2)
    w = (f - i0)[:, None]
    rad = knots[..., i0, :] * (1 - w) + knots[..., i0 + 1, :] * w
    out = np.zeros((*knots.shape[:-2], length, g1.N_ACT))
    j = knots.shape[-1]
    out[..., :j] = rad / g1.ACTION_SCALE[:j]
    return out


def track(library, clip: int, act: Callable, n_worlds: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run `n_worlds` worlds of clip `clip` from its first frame in the sim2sim evaluation setup for `steps`
    policy steps, `act(env, obs)` giving the (n_worlds, 23) actions. Returns the steps each world tracked
    before its first Succ failure (n,), and the keypoint error [m] and tilt error [rad] per step (n, steps),
    NaN after the failure."""
    from train.env.tracking_env import EnvConfig, TrackingEnv

    env = TrackingEnv(library, EnvConfig(num_envs=n_worlds).evaluation("sim2sim"))
    env.reset(np.arange(n_worlds), clips=np.full(n_worlds, clip), frames=np.zeros(n_worlds, dtype=int))
    obs = env.get_observations()
    active = np.ones(n_worlds, dtype=bool)
    alive = np.zeros(n_worlds, dtype=int)
    kp_err, tilt = np.full((n_worlds, steps), np.nan), np.full((n_worlds, steps), np.nan)
    for k in range(steps):
        obs, _, done, extras = env.step(act(env, obs))
        m = extras["metrics"]
        kp_err[active, k], tilt[active, k] = m["mpkpe_m"][active], m["tilt_rad"][active]
        alive[active] += 1
        active &= ~(done.numpy() & extras["terminated"])  # a world past its failure is reset by the env: not counted
    return alive, kp_err, tilt


def plan_clip(library, clip: int, gains: np.ndarray, offset: np.ndarray, cfg: PlanConfig = PlanConfig(),
              progress: Callable[[dict], None] | None = None) -> dict:
    """Receding-horizon CEM for clip `clip` of `library` (module docstring). `offset`: the prior's (F, 23)
    per library frame. Returns {"knots": (K, J) list [rad], "tracked_steps", "steps", "history"}."""
    length = int(library.lengths[clip])
    last = length - 1  # policy steps of the clip from its first frame
    k_total = n_knots(length, cfg.knot_every)
    rng = np.random.default_rng(cfg.seed)
    knots = np.zeros((k_total, cfg.joints))  # knot 0 (frame 0) stays 0: the start is the reference's
    mean = np.zeros((cfg.horizon_knots, cfg.joints))
    history = []
    r = cfg.noise_rollouts + 1  # rollouts per candidate: the noiseless one first
    noise = np.zeros((r, length, g1.N_ACT))
    noise[1:] = cfg.noise_std * np.random.default_rng([cfg.seed, 1]).standard_normal((r - 1, length, g1.N_ACT))
    for k0 in range(k_total - 1):
        t0 = k0 * cfg.knot_every
        if t0 >= last:
            break
        h = min(cfg.horizon_knots, k_total - 1 - k0)
        t_end = min(last, (k0 + h) * cfg.knot_every)
        m, s = mean[:h].copy(), np.full((h, cfg.joints), cfg.init_std_rad)
        best, best_cost = m.copy(), np.inf
        for _ in range(cfg.generations):
            cand = m[None] + s[None] * rng.standard_normal((cfg.population, h, cfg.joints))
            cand[0], cand[1] = m, best
            kn = np.repeat(knots[None], cfg.population, 0)
            kn[:, k0 + 1:k0 + 1 + h] = cand
            corr = knot_table(kn, length, cfg.knot_every)[:, None] + noise[None]  # (P, r, length, 23)
            cost = _window_cost(library, clip, gains, offset, corr.reshape(-1, length, g1.N_ACT), t0, t_end, cfg)
            cost = cost.reshape(cfg.population, r)
            cost = 0.5 * cost[:, 0] + 0.5 * cost[:, 1:].mean(1) if r > 1 else cost[:, 0]
            order = np.argsort(cost, kind="stable")
            if cost[order[0]] < best_cost:
                best, best_cost = cand[order[0]].copy(), float(cost[order[0]])
            elite = cand[order[:cfg.elite]]
            m, s = elite.mean(0), elite.std(0) + cfg.min_std_rad
        knots[k0 + 1] = best[0]
        mean = np.zeros_like(mean)
        mean[:h - 1] = best[1:]  # the rest of the window seeds the next one
        history.append({"knot": k0 + 1, "frame": (k0 + 1) * cfg.knot_every, "window_cost": best_cost})
        if progress:
            progress(history[-1] | {"knots": k_total - 1})
    # the plan as committed: its noiseless rollout (what Succ sees) and its noisy ones, one world each
    alive, kp_err, _ = _rollout(library, clip, gains, offset, knot_table(knots[None], length, cfg.knot_every) + noise,
                                last)
    return {"knots": knots.tolist(), "tracked_steps": int(alive[0]), "steps": last,
            "mpkpe_m": float(np.nanmean(kp_err[0])), "noisy_tracked_steps": alive[1:].tolist(), "history": history,
            "config": asdict(cfg)}


def _rollout(library, clip, gains, offset, corr, steps):
    prior = BalancePrior(np.asarray(gains, dtype=float), offset)
    n = len(corr)

    def act(env, obs):
        f = np.clip(env.frame + 1, 0, corr.shape[1] - 1)
        return prior.action(env, obs) + torch.as_tensor(corr[np.arange(n), f], dtype=torch.float32)

    return track(library, clip, act, n, steps)


def _window_cost(library, clip, gains, offset, corr, t0, t_end, cfg: PlanConfig) -> np.ndarray:
    alive, kp_err, tilt = _rollout(library, clip, gains, offset, corr, t_end)
    win = slice(t0, t_end)
    lost = (t_end - t0) - np.clip(alive - t0, 0, t_end - t0)
    with np.errstate(all="ignore"), warnings.catch_warnings():  # a world fallen before t0 has an empty window
        warnings.simplefilter("ignore", RuntimeWarning)
        kp = np.nan_to_num(np.nanmean(kp_err[:, win], 1), nan=1.0)
        tl = np.nan_to_num(np.nanmean(tilt[:, win], 1), nan=1.0)
    return cfg.fail_cost * lost + kp + cfg.tilt_weight * tl


def corrections(library, plans: dict[int, list], knot_every: int) -> np.ndarray:
    """(F, 23) action-unit corrections over the library's frames: each planned clip's knot table, 0 elsewhere."""
    out = np.zeros((int(library.lengths.sum()), g1.N_ACT))
    for clip, knots in plans.items():
        n = int(library.lengths[clip])
        out[library.starts[clip]:library.starts[clip] + n] = knot_table(np.asarray(knots, dtype=float), n, knot_every)
    return out
