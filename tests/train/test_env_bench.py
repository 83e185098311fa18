"""train.env_bench: the raw baseline is driven by exactly the inputs the env's worlds got, substep by substep."""

from __future__ import annotations

import numpy as np

from train import env_bench
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv


def test_the_bench_records_every_substep_input_of_every_world():
    env = TrackingEnv(library(2, seconds=1.0), EnvConfig(num_envs=5, seed=1))  # training randomization: delays
    dec, m = env.sim.decimation, env.model
    assert len(set(env.params.delay_steps.tolist())) > 1  # worlds run in several calls per policy step
    delay = env.params.delay_steps.copy()  # through the first policy step (a reset may draw new ones later)
    rec: list[np.ndarray] = []
    env_bench._env_rate(env, 3, rec)
    assert len(rec) == 3 * dec and all(r.shape == (5, m.nu + m.nv) for r in rec)
    u = np.stack(rec, 1)  # (N, substeps, nu + nv)
    for k in range(3):  # ERFI is drawn once per policy step: constant over its substeps, new at the next
        assert np.array_equal(u[:, k * dec, m.nu:], u[:, k * dec + dec - 1, m.nu:])
    assert not np.array_equal(u[:, 0, m.nu:], u[:, dec, m.nu:])
    # the first step's target (the previous one is the reset pose): the new one from substep `delay` on
    const = (delay == 0) | (delay >= dec)
    assert const.any() and (~const).any()
    assert np.array_equal(u[const, 0, :m.nu], u[const, dec - 1, :m.nu])
    assert all(not np.array_equal(u[w, 0, :m.nu], u[w, dec - 1, :m.nu]) for w in np.flatnonzero(~const))


def test_the_bench_reports_env_and_raw_rates_in_one_run():
    res = env_bench.bench(worlds=(2,), threads=(1,), repeats=1, physics=("train",), world_steps=8)
    (row,) = res["rows"]
    assert row["policy_steps"] == 4 and row["env_steps_s"] > 0 and row["raw_env_steps_s"] > 0
    assert 0 < row["physics_share"] <= 1 and row["cpu_ratio_vs_raw"] > 0
