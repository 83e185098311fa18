"""Latency of a call, as benches report it: p50 and p99 over repeated calls after a warm-up.

`latency_ms` is wall-clock time per call. On a shared machine its tail is mostly the calling thread
waiting for a core (the scheduler's time slice is a few ms), so `latency_stats` reports the calling
thread's CPU time per call beside it: what the call itself costs, whatever else runs.
"""

from __future__ import annotations

import functools
import time
from typing import Callable

import numpy as np


def latency_ms(fn: Callable[[], object], n: int = 200, warmup: int = 10) -> tuple[float, float]:
    s = latency_stats(fn, n, warmup)
    return s["p50_ms"], s["p99_ms"]


def latency_stats(fn: Callable[[], object], n: int = 200, warmup: int = 10) -> dict[str, float]:
    """Wall-clock and calling-thread CPU time per call [ms]: p50, p99 and max over n calls after `warmup`."""
    if n < 1:
        raise ValueError(f"latency needs at least one timed call, got n={n}")
    for _ in range(warmup):
        fn()
    wall, cpu = np.empty(n), np.empty(n)
    for i in range(n):
        c = time.thread_time()
        t = time.perf_counter()
        fn()
        wall[i] = (time.perf_counter() - t) * 1e3
        cpu[i] = (time.thread_time() - c) * 1e3
    return {"p50_ms": float(np.percentile(wall, 50)), "p99_ms": float(np.percentile(wall, 99)),
            "max_ms": float(wall.max()), "cpu_p50_ms": float(np.percentile(cpu, 50)),
            "cpu_p99_ms": float(np.percentile(cpu, 99)), "calls": n}


def torch_threads(n: int) -> Callable:
    """Decorator: run the function with torch's intra-op threads at `n` and restore the caller's count after,
    so a benchmark or a budget run called in-process (tests) does not change every later torch call's
    reduction order (a VAE trained after it would get other weights, i.e. another model id)."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(n)
            try:
                return fn(*args, **kwargs)
            finally:
                torch.set_num_threads(before)

        return inner

    return wrap
