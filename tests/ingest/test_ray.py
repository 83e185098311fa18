"""The Ray path (local, 2 CPUs) produces the same shards as the serial path."""

from __future__ import annotations

from ingest.pipeline import run_ingest
from robomirror.executor import run_tasks
from robomirror.paths import DataLayout
from tests.conftest import TEST_CFG, run_module, shard_digests


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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_same_entry_point_joins_a_running_cluster_by_address(ingested, small_sample, tmp_path):
    """`ray start --head` (a 2-CPU cluster on loopback), then `python -m ingest run --ray-address`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    layout, _ = ingested
    ray_bin = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    port = _free_port()
    start = subprocess.run([ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        root = tmp_path / "cluster"
        out = run_module("ingest", "--data-root", str(root), "run", "--ray-address", f"127.0.0.1:{port}",
                         "--no-progress", "--motionx", str(small_sample["motionx"]),
                         "--nymeria", str(small_sample["nymeria"]), "--shard-mb", str(TEST_CFG.shard_target_bytes / 1e6),
                         env={"RAY_AUTH_MODE": "disabled"})
        assert out.returncode == 0, out.stderr[-2000:]
        assert shard_digests(DataLayout(root)) == shard_digests(layout)
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
