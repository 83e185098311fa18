"""`python -m train.env_bench`: the policy env's steps/s against raw physics of the same worlds.

For each world count (1, 64, 256) and thread count (1, 2): the env (`train` setup, training
randomization, the reference replayed as the action, resets included) against raw stepping of the
same model from the same states with the same substeps per policy step (`decimation`), in the same
run: `mujoco.rollout` with constant controls on the same number of threads (pure C, no Python per
step), and at one thread also a loop of `mj_step(m, d, nstep)` over the worlds' MjData. Each figure
is the best of `--repeats` interleaved timings (the env and its baseline alternate), so that the
load of other processes on a shared machine hits both alike; the load average is recorded.
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
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv

FORMAT_VERSION = 1
WORLD_STEPS = 3072  # policy steps x worlds per timing: ~1 s of raw physics on one core


def _env_rate(env: TrackingEnv, steps: int) -> float:
    obs = env.get_observations()
    t = time.perf_counter()
    for _ in range(steps):
        obs, *_ = env.step(obs["residual_base"])
    return env.num_envs * steps / (time.perf_counter() - t)


def _snapshot(env: TrackingEnv) -> tuple[np.ndarray, np.ndarray]:
    """(N, nstate) full physics states and (N, nu) controls of the env's worlds, now."""
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = []
    for i in range(env.num_envs):  # the bench's own set-up, not the env's step
        d = env.batch.get_data(i)
        s = np.empty(mujoco.mj_stateSize(env.model, spec))
        mujoco.mj_getState(env.model, d, s, spec)
        states.append(s)
    return np.stack(states), env.ctrl.copy()


def _rollout_rate(model: mujoco.MjModel, states: np.ndarray, ctrl: np.ndarray, nstep: int, threads: int,
                  pool: mujoco.rollout.Rollout) -> float:
    datas = [mujoco.MjData(model) for _ in range(threads)]
    n = len(states)
    control = np.repeat(ctrl[:, None, :], nstep, axis=1)
    out = np.empty((n, nstep, states.shape[1]))
    t = time.perf_counter()
    pool.rollout(model, datas, states, control, nstep=nstep, state=out)
    return n * nstep / (time.perf_counter() - t)


def _mj_step_rate(model: mujoco.MjModel, states: np.ndarray, ctrl: np.ndarray, nstep: int) -> float:
    datas = []
    for s, u in zip(states, ctrl, strict=True):
        d = mujoco.MjData(model)
        mujoco.mj_setState(model, d, s, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        d.ctrl[:] = u
        datas.append(d)
    t = time.perf_counter()
    for d in datas:
        mujoco.mj_step(model, d, nstep=nstep)
    return len(datas) * nstep / (time.perf_counter() - t)


def bench(worlds: tuple[int, ...] = (1, 64, 256), threads: tuple[int, ...] = (1, 2), repeats: int = 3) -> dict:
    lib = library(4, seconds=4.0)
    rows = []
    for n in worlds:
        steps = max(4, WORLD_STEPS // n)
        for th in threads:
            env = TrackingEnv(lib, EnvConfig(num_envs=n, seed=0, threads=th))
            dec = env.sim.decimation
            _env_rate(env, 3)  # warm up: caches, the delay line, a few resets
            pool = mujoco.rollout.Rollout(nthread=0 if th == 1 else th)
            env_r, roll_r, step_r = [], [], []
            for _ in range(repeats):
                states, ctrl = _snapshot(env)
                env_r.append(_env_rate(env, steps))
                roll_r.append(_rollout_rate(env.model, states, ctrl, steps * dec, th, pool) / dec)
                if th == 1:
                    step_r.append(_mj_step_rate(env.model, states, ctrl, steps * dec) / dec)
            pool.close()
            row = {"worlds": n, "threads": th, "policy_steps": steps, "decimation": dec,
                   "env_steps_s": max(env_r), "raw_rollout_env_steps_s": max(roll_r),
                   "ratio_vs_raw_rollout": max(env_r) / max(roll_r),
                   "timings": {"env": env_r, "raw_rollout": roll_r}}
            if step_r:
                row |= {"raw_mj_step_env_steps_s": max(step_r), "ratio_vs_raw_mj_step": max(env_r) / max(step_r)}
                row["timings"]["raw_mj_step"] = step_r
            rows.append(row)
            print(f"{n:4d} worlds, {th} thread(s): env {row['env_steps_s']:8.0f} steps/s, raw rollout "
                  f"{row['raw_rollout_env_steps_s']:8.0f} ({row['ratio_vs_raw_rollout']:.2f}x)"
                  + (f", raw mj_step {row['raw_mj_step_env_steps_s']:8.0f} ({row['ratio_vs_raw_mj_step']:.2f}x)"
                     if step_r else ""), flush=True)
    by = {(r["worlds"], r["threads"]): r for r in rows}
    scaling = {str(n): by[(n, max(threads))]["env_steps_s"] / by[(n, min(threads))]["env_steps_s"]
               for n in worlds if len(threads) > 1}
    raw_scaling = {str(n): by[(n, max(threads))]["raw_rollout_env_steps_s"] / by[(n, min(threads))]["raw_rollout_env_steps_s"]
                   for n in worlds if len(threads) > 1}
    return {"format_version": FORMAT_VERSION, "sim": "train", "rows": rows,
            "thread_scaling_env": scaling, "thread_scaling_raw": raw_scaling,
            "machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg(), "processor": platform.processor(),
                        "mujoco": mujoco.__version__, "torch_threads": torch.get_num_threads()},
            "unit": "policy (env) steps per second; raw physics counted in the same unit (decimation substeps)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.env_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, nargs="+", default=[1, 64, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=None, help="JSON path (default <data root>/runs/bench/env_bench.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    load = os.getloadavg()
    res = bench(tuple(args.worlds), tuple(args.threads), args.repeats)
    res["machine"]["loadavg_start"] = load
    out = Path(args.out) if args.out else resolve_data_root(args.data_root) / "runs" / "bench" / "env_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    publish_json(out, res)
    print(f"thread scaling (env): {res['thread_scaling_env']}; raw: {res['thread_scaling_raw']}")
    print(f"load average at start {load}, at end {res['machine']['loadavg_end']}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
