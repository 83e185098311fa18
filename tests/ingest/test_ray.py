"""The Ray path (local, 2 CPUs) produces the same shards as the serial path."""

from __future__ import annotations

from ingest.pipeline import run_ingest
from robomirror.executor import run_tasks
from robomirror.paths import DataLayout
from tests.conftest import TEST_CFG, shard_digests


def _square(x: int) -> int:
    return x * x


def test_ray_local_two_cpus_matches_serial(ingested, small_sample, tmp_path):
    layout, serial = ingested
    ray_layout = DataLayout(tmp_path / "ray")
    summary = run_ingest(ray_layout, small_sample, TEST_CFG, executor="ray", num_cpus=2, progress=False)
    assert summary.clips == serial.clips and summary.failed == 0
    assert shard_digests(ray_layout) == shard_digests(layout)


def test_run_tasks_rejects_unknown_executor():
    import pytest

    with pytest.raises(ValueError, match="serial' or 'ray"):
        list(run_tasks(_square, [1], executor="dask"))
