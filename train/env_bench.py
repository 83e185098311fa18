"""`python -m train.env_bench`: the policy env's steps/s against raw physics of the same worlds.

For each physics (`nominal`, and `train`: the training randomization with ERFI and pushes), world
count (1, 64, 256) and thread count (1, 2): the env (`train` setup, the reference replayed as the
action, resets included) against raw stepping of the same model from the same states with the same
substeps per policy step (`decimation`), in the same run, from the same states and warm starts, driven by the controls and applied forces the env's
worlds got substep by substep (recorded during the env's timing), so the physics does the same work
(a world holding a constant target costs the solver about half the iterations of one tracking a
motion; with nominal physics the raw trajectories are the env's, bit for bit, up to a world's reset):
- `raw`: what any env must do, every world advances `decimation` substeps before the policy acts
  again: one `mujoco.batch` rollout call per policy step (mj_step in C, `threads` threads);
- `raw world-major`: `mujoco.rollout` of each world through the whole window at once, an upper
  bound no policy-synchronous env reaches (its MjData stays in cache for all the substeps).
The baseline steps the nominal model: like for like with `nominal`; under `train` (randomized models,
pushes) the env's own physics share (time in its batched physics / step time) is the overhead measure. Each figure is the best of
`--repeats` interleaved timings (env and baseline alternate, and so do the thread counts of one world
count, so the load of other processes on a shared machine hits them alike), as wall-clock and as process
CPU time; the load average is recorded.
Writes `<data root>/runs/bench/env_bench.json` (format_version 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import mujoco
import mujoco.rollout
import numpy as np
import torch

from robomirror.atomic import publish_json
from robomirror.paths import resolve_data_root
from robomirror.timing import torch_threads
from train.env.randomization import NOMINAL, RandomizationConfig
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv

FORMAT_VERSION = 1
WORLD_STEPS = 3072  # policy steps x worlds per timing: ~1 s of raw physics on one core


def _timed(fn) -> tuple[float, float]:
    """(wall s, process CPU s) of fn()."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def _env_rate(env: TrackingEnv, steps: int, record: list | None = None) -> tuple[float, float, float]:
    """(env steps/s wall, env steps per CPU second, fraction of the wall time in the env's physics);
    `record` collects the (N, nu + nv) controls and applied forces of every physics substep."""
    obs = [env.get_observations()]
    inner, phys, batch_step = env._physics, [0.0], env.batch.step
    calls: list[tuple[np.ndarray | None, int, np.ndarray]] = []

    def physics() -> None:
        t = time.perf_counter()
        inner()
        phys[0] += time.perf_counter() - t

    def step(ids=None, nstep=1, **kw) -> None:  # which worlds ran how many substeps on which inputs
        calls.append((None if ids is None else np.array(ids), nstep, np.concatenate([env.ctrl, env.qfrc_applied], -1)))
        batch_step(ids, nstep=nstep, **kw)

    def run() -> None:
        for _ in range(steps):
            obs[0], *_ = env.step(obs[0]["residual_base"])

    env._physics = physics
    if record is not None:
        env.batch.step = step
    try:
        wall, cpu = _timed(run)
    finally:
        del env._physics
        if record is not None:
            del env.batch.step
    if record is not None:  # (N, nu + nv) inputs per substep, every world having run each substep once
        done = np.zeros(env.num_envs, dtype=int)
        per_world: list[list[np.ndarray]] = [[] for _ in range(env.num_envs)]
        for ids, nstep, u in calls:
            for i in (range(env.num_envs) if ids is None else ids):
                per_world[i] += [u[i]] * nstep
                done[i] += nstep
        if len(set(done.tolist())) != 1:
            raise RuntimeError(f"the env's worlds ran unequal substep counts {sorted(set(done.tolist()))}")
        record.extend(np.stack([w[k] for w in per_world]) for k in range(int(done[0])))
    return env.num_envs * steps / wall, env.num_envs * steps / cpu, phys[0] / wall


def _snapshot(env: TrackingEnv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, nstate) full physics states, (N, nu) controls and (N, nv) warm starts of the env's worlds, now."""
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = []
    for i in range(env.num_envs):  # the bench's own set-up, not the env's step
        d = env.batch.get_data(i)
        s = np.empty(mujoco.mj_stateSize(env.model, spec))
        mujoco.mj_getState(env.model, d, s, spec)
        states.append(s)
    return np.stack(states), env.ctrl.copy(), env.batch.qacc_warmstart.copy()


def _rollout_rate(model: mujoco.MjModel, states: np.ndarray, warmstart: np.ndarray, control: np.ndarray,
                  threads: int, pool: mujoco.rollout.Rollout) -> tuple[float, float]:
    """(physics steps/s wall, per CPU second) of raw rollouts from the states with the env's own controls
    and applied forces, (N, nstep, nu + nv)."""
    datas = [mujoco.MjData(model) for _ in range(threads)]
    n, nstep = control.shape[:2]
    spec = mujoco.mjtState.mjSTATE_CTRL | mujoco.mjtState.mjSTATE_QFRC_APPLIED
    out = np.empty((n, nstep, states.shape[1]))
    wall, cpu = _timed(lambda: pool.rollout(model, datas, states, control, control_spec=int(spec), nstep=nstep,
                                            initial_warmstart=warmstart, state=out))
    return n * nstep / wall, n * nstep / cpu


def _raw_batch_rate(model: mujoco.MjModel, states: np.ndarray, warmstart: np.ndarray, control: np.ndarray,
                    threads: int, dec: int) -> tuple[float, float]:
    """(physics steps/s wall, per CPU second) of the same worlds stepped policy step by policy step, as an
    env must (every world advances `dec` substeps before the policy acts again), in one `mujoco.batch`
    call per policy step (mj_step in C on `threads` threads), with the env's controls and forces."""
    import mujoco.batch

    n, nstep = control.shape[:2]
    b = mujoco.batch.Batch(model, n, nthread=threads, persistent=True)
    d = mujoco.MjData(model)
    for i in range(n):
        mujoco.mj_setState(model, d, states[i], mujoco.mjtState.mjSTATE_FULLPHYSICS)
        b.qpos[i], b.qvel[i] = d.qpos, d.qvel
    b.qacc_warmstart[:] = warmstart
    spec = int(mujoco.mjtState.mjSTATE_CTRL | mujoco.mjtState.mjSTATE_QFRC_APPLIED)
    chunks = [np.ascontiguousarray(control[:, k:k + dec]) for k in range(0, nstep, dec)]
    wall, cpu = _timed(lambda: [b.rollout(dec, control=c, control_spec=spec, record=()) for c in chunks])
    return n * nstep / wall, n * nstep / cpu


_KEYS = ("env", "env_cpu", "physics_share", "raw", "raw_cpu", "raw_world_major", "raw_world_major_cpu")


def _repeat(env: TrackingEnv, steps: int, threads: int, pool: mujoco.rollout.Rollout, t: dict[str, list]) -> None:
    """One timing of the env and of its raw baselines from the same states, appended to t."""
    dec = env.sim.decimation
    states, _, warm = _snapshot(env)
    record: list[np.ndarray] = []
    for k, v in zip(("env", "env_cpu", "physics_share"), _env_rate(env, steps, record), strict=True):
        t[k].append(v)
    control = np.stack(record, axis=1)  # (N, steps * dec, nu + nv): what the env's worlds were driven with
    for k, v in zip(("raw", "raw_cpu"), _raw_batch_rate(env.model, states, warm, control, threads, dec), strict=True):
        t[k].append(v / dec)
    for k, v in zip(("raw_world_major", "raw_world_major_cpu"),
                    _rollout_rate(env.model, states, warm, control, threads, pool), strict=True):
        t[k].append(v / dec)


def _summary(env: TrackingEnv, steps: int, threads: int, t: dict[str, list]) -> dict:
    best = {k: max(v) for k, v in t.items()}
    return {"worlds": env.num_envs, "threads": threads, "policy_steps": steps, "decimation": env.sim.decimation,
            "env_steps_s": best["env"], "env_steps_per_cpu_s": best["env_cpu"],
            "physics_share": float(np.median(t["physics_share"])),
            "raw_env_steps_s": best["raw"], "ratio_vs_raw": best["env"] / best["raw"],
            "cpu_ratio_vs_raw": best["env_cpu"] / best["raw_cpu"],
            # the load-independent figure: process CPU time per policy step of all worlds (every thread's)
            "env_cpu_ms_per_policy_step": 1e3 * env.num_envs / best["env_cpu"],
            "raw_cpu_ms_per_policy_step": 1e3 * env.num_envs / best["raw_cpu"], "loadavg_1min": os.getloadavg()[0],
            "raw_world_major_env_steps_s": best["raw_world_major"],
            "ratio_vs_raw_world_major": best["env"] / best["raw_world_major"], "timings": t}


def _rows(lib, rand: RandomizationConfig, n: int, threads: tuple[int, ...], steps: int, repeats: int,
          shard_numpy: bool = False) -> list[dict]:
    """One row per thread count for n worlds; the thread counts' timings interleave repeat by repeat, so
    the load of other processes on a shared machine hits every thread count alike. `shard_numpy`: the env's
    numpy after the physics runs on as many threads as its physics (EnvConfig.numpy_threads), else on one."""
    envs = {th: TrackingEnv(lib, EnvConfig(num_envs=n, seed=0, threads=th, numpy_threads=th if shard_numpy else 1,
                                           randomization=rand)) for th in threads}
    pools = {th: mujoco.rollout.Rollout(nthread=0 if th == 1 else th) for th in threads}
    t = {th: {k: [] for k in _KEYS} for th in threads}
    for env in envs.values():
        _env_rate(env, 3)  # warm up: caches, the delay line, a few resets
    for _ in range(repeats):
        for th in threads:
            _repeat(envs[th], steps, th, pools[th], t[th])
    for th in threads:
        pools[th].close()
        envs[th].rows.close()
    return [_summary(envs[th], steps, th, t[th]) | {"numpy_threads": envs[th].cfg_t.numpy_threads} for th in threads]


def bench(worlds: tuple[int, ...] = (1, 64, 256), threads: tuple[int, ...] = (1, 2), repeats: int = 3,
          physics: tuple[str, ...] = ("nominal", "train"), world_steps: int = WORLD_STEPS,
          shard_numpy: bool = False) -> dict:
    lib = library(4, seconds=4.0)
    rows = []
    for ph in physics:
        rand = NOMINAL if ph == "nominal" else RandomizationConfig()
        for n in worlds:
            steps = max(4, min(600, world_steps // n))
            for row in _rows(lib, rand, n, threads, steps, repeats, shard_numpy):
                row = {"physics": ph} | row
                rows.append(row)
                print(f"{ph:8s} {n:4d} worlds, {row['threads']} thread(s): env {row['env_steps_s']:7.0f} steps/s "
                      f"(physics {row['physics_share']:.0%} of it); raw {row['raw_env_steps_s']:7.0f}: "
                      f"{row['ratio_vs_raw']:.2f}x wall, {row['cpu_ratio_vs_raw']:.2f}x CPU "
                      f"({row['env_cpu_ms_per_policy_step']:.1f} vs {row['raw_cpu_ms_per_policy_step']:.1f} CPU ms "
                      f"per policy step); load {row['loadavg_1min']:.1f}; raw world-major "
                      f"{row['raw_world_major_env_steps_s']:7.0f}: {row['ratio_vs_raw_world_major']:.2f}x", flush=True)
    by = {(r["physics"], r["worlds"], r["threads"]): r for r in rows}
    lo, hi = min(threads), max(threads)
    scaling = {f"{ph}/{n}": {"env": by[(ph, n, hi)]["env_steps_s"] / by[(ph, n, lo)]["env_steps_s"],
                             "raw": by[(ph, n, hi)]["raw_env_steps_s"] / by[(ph, n, lo)]["raw_env_steps_s"]}
               for ph in physics for n in worlds} if hi != lo else {}
    return {"format_version": FORMAT_VERSION, "sim": "train", "rows": rows, "thread_scaling": scaling,
            "machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg(), "processor": platform.processor(),
                        "mujoco": mujoco.__version__, "torch_threads": torch.get_num_threads()},
            "unit": "policy (env) steps per second; raw physics counted in the same unit (decimation substeps)"}


@torch_threads(1)
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.env_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, nargs="+", default=[1, 64, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--physics", nargs="+", default=["nominal", "train"], choices=["nominal", "train"])
    ap.add_argument("--shard-numpy", action="store_true",
                    help="run the env's numpy after the physics on as many threads as its physics (default: one)")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=None, help="JSON path (default <data root>/runs/bench/env_bench.json)")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    res = bench(tuple(args.worlds), tuple(args.threads), args.repeats, tuple(args.physics),
                shard_numpy=args.shard_numpy)
    res["machine"]["loadavg_start"] = load
    out = Path(args.out) if args.out else resolve_data_root(args.data_root) / "runs" / "bench" / "env_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    publish_json(out, res)
    for k, v in res["thread_scaling"].items():
        print(f"thread scaling {k}: env {v['env']:.2f}x, raw {v['raw']:.2f}x")
    print(f"load average at start {load}, at end {res['machine']['loadavg_end']}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
