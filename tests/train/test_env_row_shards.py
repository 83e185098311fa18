"""The env's numpy after the physics, split by world rows across threads (train/env/row_shards.py):
the same bits as one thread, whatever the thread count and wherever the rows are cut."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.env import row_shards
from train.env.observations import RobotState
from train.env.row_shards import RowShards, join
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv


@pytest.fixture(scope="module")
def lib():
    return library(3)


def test_the_slices_cover_every_row_once_in_order():
    for n, threads in ((1, 2), (7, 2), (12, 3), (13, 4), (256, 2), (5, 1)):
        shards = RowShards(n, threads, min_rows=2)
        rows = np.concatenate([np.arange(n)[sl] for sl in shards.slices])
        assert np.array_equal(rows, np.arange(n))
        assert len(shards.slices) == max(1, min(threads, n // 2))
        assert shards.map(lambda sl: sl) == shards.slices
        shards.close()


def test_a_worker_s_error_is_raised_after_every_slice_has_finished():
    shards, done = RowShards(8, 2, min_rows=1), []

    def fn(rows: slice) -> int:
        if rows.start:
            raise ValueError("second slice")
        done.append(rows)
        return 0

    with pytest.raises(ValueError, match="second slice"):
        shards.map(fn)
    assert done == [slice(0, 4)]
    shards.close()


def test_the_workers_handle_numpy_errors_as_the_caller_does():
    shards = RowShards(8, 2, min_rows=1)
    with np.errstate(divide="raise"):
        assert [e["divide"] for e in shards.map(lambda rows: np.geterr())] == ["raise", "raise"]
    shards.close()


def test_join_concatenates_arrays_dicts_and_dataclasses_along_the_worlds():
    parts = [{"a": np.arange(2), "b": {"c": np.ones((2, 3))}}, {"a": np.arange(2, 5), "b": {"c": np.zeros((3, 3))}}]
    out = join(parts)
    assert np.array_equal(out["a"], np.arange(5)) and out["b"]["c"].shape == (5, 3)
    with pytest.raises(TypeError, match="arrays, dicts or dataclasses"):
        join([1.0, 2.0])


def _rollout(lib, threads: int, reward: str, n: int = 13, steps: int = 30) -> list[dict]:
    """Everything the env hands out, step by step, under the training randomization (pushes, ERFI, delays)
    and noisy actions that make some worlds fall and reset."""
    env = TrackingEnv(lib, EnvConfig(num_envs=n, seed=5, threads=threads, numpy_threads=threads, reward=reward,
                                     terminations=reward))
    obs, gen, out = env.get_observations(), torch.Generator().manual_seed(1), []
    for _ in range(steps):
        obs, rew, done, extras = env.step(obs["residual_base"] + 0.5 * torch.randn(n, 23, generator=gen))
        out.append({"obs": {k: v.numpy().copy() for k, v in obs.items()}, "reward": rew.numpy().copy(),
                    "done": done.numpy().copy(), "metrics": extras["metrics"], "terminated": extras["terminated"],
                    "log": extras["log"], "terms": env.last_terms, "sigma": dict(env.sigma.sigma),
                    "state": {f: np.copy(getattr(env.state, f)) for f in RobotState.__dataclass_fields__},
                    "air_time": env.air_time.copy(), "arrays": env.observation_arrays()})
    env.rows.close()
    return out


def _assert_same_bits(a, b, path: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same_bits(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), path
    else:
        assert a == b, path


@pytest.mark.parametrize("reward", ["paper", "mjlab"])
def test_every_output_has_the_same_bits_at_any_thread_count(lib, reward):
    assert 13 // row_shards.MIN_ROWS_PER_SHARD >= 3  # 13 worlds: slices of 7 + 6 rows, and of 4 + 5 + 4
    one = _rollout(lib, 1, reward)
    assert sum(r["done"].sum() for r in one) > 0  # resets happened: the sharded state must merge with them
    for threads in (2, 3):
        for k, (a, b) in enumerate(zip(one, _rollout(lib, threads, reward), strict=True)):
            _assert_same_bits(a, b, f"threads={threads} step {k}")
