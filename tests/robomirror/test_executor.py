"""GPU requests per Ray task: one GPU per embedding task on a cluster with GPUs, none without."""

from __future__ import annotations

import pytest

from robomirror.executor import gpus_per_task_for, run_tasks


def test_auto_asks_for_a_gpu_only_where_there_are_gpus():
    assert gpus_per_task_for({"CPU": 2.0}, "auto") == 0.0
    assert gpus_per_task_for({"CPU": 64.0, "GPU": 8.0}, "auto") == 1.0
    assert gpus_per_task_for({"CPU": 2.0}, 0.5) == 0.5


def test_serial_runs_in_order_and_an_unknown_executor_is_refused():
    assert list(run_tasks(lambda x, k: x * k, [1, 2, 3], (10,), "serial")) == [(1, 10), (2, 20), (3, 30)]
    with pytest.raises(ValueError, match="executor must be 'serial' or 'ray'"):
        list(run_tasks(lambda x: x, [1], (), "dask"))
