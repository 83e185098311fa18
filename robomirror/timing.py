"""Latency of a call, as benches report it: p50 and p99 over repeated calls after a warm-up."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def latency_ms(fn: Callable[[], object], n: int = 200, warmup: int = 10) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    ts = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn()
        ts[i] = (time.perf_counter() - t) * 1e3
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 99))
