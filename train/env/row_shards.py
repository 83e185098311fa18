"""The env's per-world numpy work split by world rows across threads (issue 20: env throughput).

The physics runs on `threads` threads in C; the state reads, rewards, terminations and observations
after it are numpy, which releases the GIL inside its loops over large arrays, so contiguous slices of
the worlds computed on threads of one process run mostly in parallel. Every term computed on a slice is
a function of its own worlds' rows only (row-wise arithmetic, reductions within a row), so the bits do
not depend on where the rows are cut, nor on the thread count; what reduces over all worlds (the
adaptive sigmas, the logged means) runs on the joined arrays, and every RNG draw stays on the caller's
thread, in the same order.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np

# fewer worlds than this per thread and the threads' hand-offs cost more than the numpy they share
MIN_ROWS_PER_SHARD = 4

T = TypeVar("T")


class RowShards:
    """Contiguous row slices of `n_rows` worlds, one per thread, and the threads to run them on
    (the caller's thread runs the first slice; `threads - 1` pool threads the others)."""

    def __init__(self, n_rows: int, threads: int, min_rows: int = MIN_ROWS_PER_SHARD) -> None:
        if threads < 1 or min_rows < 1:
            raise ValueError(f"threads and min_rows must be >= 1, got {threads} and {min_rows}")
        k = max(1, min(threads, n_rows // min_rows))
        cuts = np.linspace(0, n_rows, k + 1).round().astype(int)
        self.slices = [slice(int(lo), int(hi)) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]
        self._pool = ThreadPoolExecutor(k - 1, thread_name_prefix="env-rows") if k > 1 else None

    def map(self, fn: Callable[[slice], T]) -> list[T]:
        """fn(rows) of every slice, in row order; the first on this thread while the pool runs the rest."""
        if self._pool is None:
            return [fn(self.slices[0])]
        # each worker runs in a copy of the caller's context: numpy's error handling (np.errstate) is the caller's
        futures = [self._pool.submit(contextvars.copy_context().run, fn, rows) for rows in self.slices[1:]]
        try:
            first = fn(self.slices[0])
        finally:  # never leave a worker writing rows behind a raised error
            wait(futures)
        return [first, *(f.result() for f in futures)]  # a worker's error is raised here

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def join(parts: list[Any]) -> Any:
    """The per-slice results joined along the world axis: arrays concatenated, dicts and dataclasses
    field by field (a None field stays None), in slice order."""
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    if isinstance(first, dict):
        return {k: join([p[k] for p in parts]) for k in first}
    if dataclasses.is_dataclass(first):
        return dataclasses.replace(first, **{f.name: None if getattr(first, f.name) is None
                                             else join([getattr(p, f.name) for p in parts])
                                             for f in dataclasses.fields(first)})
    raise TypeError(f"cannot join per-slice results of type {type(first).__name__}; expected arrays, dicts or "
                    "dataclasses of them")
