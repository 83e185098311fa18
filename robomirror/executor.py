"""Run one function over many items: serially in-process, or as Ray tasks (local or a cluster).

The same call serves a laptop and a cluster: `executor="ray"` with no address starts a local
Ray instance on this machine's CPUs (no dashboard); with `ray_address` it joins an existing
cluster, whose workers must see the same data root (shared filesystem).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, Sequence


def run_tasks(fn: Callable[..., Any], items: Sequence[Any], args: tuple = (), executor: str = "ray",
              ray_address: str | None = None, num_cpus: int | None = None,
              gpus_per_task: float | str = 0) -> Iterator[tuple[Any, Any]]:
    """Yield (item, fn(item, *args)) as each finishes. Failures inside `fn` are fn's to report;
    a worker that dies yields (item, exception). `gpus_per_task="auto"` asks for one GPU per task
    when the cluster has GPUs (so tasks land where the model can run on one), none otherwise."""
    if executor == "serial":
        for item in items:
            yield item, fn(item, *args)
        return
    if executor != "ray":
        raise ValueError(f"executor must be 'serial' or 'ray', got {executor!r}")
    import ray

    started_here = not ray.is_initialized()
    # Ray starts its processes with fork+exec, so lancedb's warning about state in forked children
    # (printed once per process when a store is open in the driver) does not apply
    warnings.filterwarnings("ignore", message="lancedb fork support is experimental", category=RuntimeWarning)
    if started_here:
        if ray_address:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            # address="local": always a fresh instance of our own, even if another Ray cluster runs here
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
    try:
        gpus = gpus_per_task_for(ray.cluster_resources(), gpus_per_task)
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=1)(fn)
        futures = {remote.remote(item, *args): item for item in items}
        pending = list(futures)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    yield futures[ref], ray.get(ref)
                except Exception as e:  # noqa: BLE001 - worker crash, OOM kill, lost node
                    yield futures[ref], e
    finally:
        if started_here:
            ray.shutdown()


def gpus_per_task_for(resources: dict, gpus_per_task: float | str) -> float:
    """A number of GPUs per task: as given, or for "auto" one when the cluster has any."""
    if gpus_per_task == "auto":
        return 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    return float(gpus_per_task)
