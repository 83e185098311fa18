"""The ingest job: discover sources, stage every sequence (Ray tasks), pack shards, report."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
from tqdm import tqdm

from ingest.bones_seed import discover_bones_seed
from ingest.config import IngestConfig
from ingest.failures import Failure, Reason, write_ledger
from ingest.g1_csv import discover_g1_csv
from ingest.lerobot_import import discover_lerobot
from ingest.manifest import MANIFEST_SCHEMA, manifest_row
from ingest.motionx import discover_motionx
from ingest.nymeria import discover_nymeria
from ingest.sequence import SourceRef
from ingest.stage import SequenceResult, process_sequence, staging_name
from robomirror.atomic import sweep_temp_files
from robomirror.errors import InfrastructureError
from robomirror.executor import run_tasks
from robomirror.paths import DataLayout
from robomirror.shards import PackResult, load_staged, pack
from robomirror.writer_lock import writes_data_root

DISCOVER = {"motionx": discover_motionx, "nymeria": discover_nymeria,
            "g1_csv": discover_g1_csv,  # G1 joint trajectories (issue 23): robot motions, no human body
            "bones_seed": discover_bones_seed, "lerobot": discover_lerobot}
STAGE = "ingest"


@dataclass
class IngestSummary:
    sources: int = 0
    built: int = 0
    cached: int = 0
    failed: int = 0
    clips: int = 0
    shards: int = 0
    shards_rebuilt: int = 0
    bytes: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    failures_by_reason: Counter = field(default_factory=Counter)
    kept_without_source: int = 0  # published sequences whose source was not found (kept; --prune drops)
    layouts: Counter = field(default_factory=Counter)  # "<dataset>: <release layout>" -> sequences found
    per_dataset: dict[str, PackResult] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else 0.0


def discover(sources: dict[str, Path]) -> list[SourceRef]:
    refs = []
    for dataset in sorted(sources):
        if dataset not in DISCOVER:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DISCOVER)}")
        refs.extend(DISCOVER[dataset](Path(sources[dataset])))
    return refs


@writes_data_root("ingest run")
def run_ingest(layout: DataLayout, sources: dict[str, Path], cfg: IngestConfig, executor: str = "ray",
               ray_address: str | None = None, num_cpus: int | None = None,
               progress: bool = True, prune: bool = False) -> IngestSummary:
    """Ingest `sources` into the data root's shards. Published sequences whose source is gone stay
    published unless `prune`; a source that fails now is removed (never republished from stale bytes)."""
    t0 = time.perf_counter()
    summary = IngestSummary()
    sweep_temp_files(layout.root / "work" / STAGE)
    sweep_temp_files(layout.root / "shards" / STAGE)
    refs = discover(sources)
    summary.sources = len(refs)
    summary.layouts.update(f"{r.dataset}: {r.layout or r.dataset}" for r in refs if r.problem is None)
    by_dataset: dict[str, list[SourceRef]] = {}
    for r in refs:
        by_dataset.setdefault(r.dataset, []).append(r)
    try:
        for ds in by_dataset:
            layout.work_dir(STAGE, ds).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InfrastructureError(f"cannot write to the data root {layout.root}: {e}") from e

    jobs = [(r, str(layout.work_dir(STAGE, r.dataset))) for r in refs]
    bar = tqdm(total=len(jobs), desc="ingest sequences", unit="seq", disable=not progress)
    infra: list[str] = []
    for (ref, _), result in run_tasks(_process_job, jobs, (cfg,), executor, ray_address, num_cpus):
        if isinstance(result, BaseException):
            result = SequenceResult(ref.key, "failed", 0, Failure(
                ref.dataset, ref.sequence, ref.files[0][1], STAGE, Reason.WORKER_CRASHED.value,
                f"{type(result).__name__}: {result}"), 0.0, 0.0, 0)
        if result.status == "infra_error":
            infra.append(result.failure.detail)
        else:
            _account(summary, result)
        bar.update(1)
        bar.set_postfix(clips=summary.clips, failed=summary.failed)
    bar.close()
    if infra:  # stop before packing: nothing is published, retracted or ledgered from a broken machine
        raise InfrastructureError(f"{len(infra)} of {len(jobs)} sequences hit an infrastructure error, so nothing "
                                  f"was published (the previous shards, manifest and ledger are untouched); "
                                  f"first: {infra[0]}")

    for ds, ds_refs in sorted(by_dataset.items()):
        keep = [] if prune else _published_without_source(layout, ds, ds_refs)
        summary.kept_without_source += len(keep)
        stems = sorted(((r.subset, r.sequence), staging_name(r)) for r in [*ds_refs, *keep] if r.problem is None)
        staged = load_staged(layout.work_dir(STAGE, ds), [stem for _, stem in stems])
        res = pack(staged, layout.shard_dir(STAGE, ds), layout.manifest(STAGE, ds), cfg.shard_target_bytes,
                   manifest_row, MANIFEST_SCHEMA)
        summary.per_dataset[ds] = res
        summary.shards += res.shards
        summary.shards_rebuilt += res.rebuilt
        summary.bytes += res.bytes
    summary.clips = sum(r.clips for r in summary.per_dataset.values())
    write_ledger(layout.ledger(STAGE), summary.failures)
    summary.seconds = time.perf_counter() - t0
    return summary


def _published_without_source(layout: DataLayout, ds: str, refs: list[SourceRef]) -> list[SourceRef]:
    """Sequences the current manifest publishes whose source was not found this run. Without --prune
    they stay published from their staging; if that is gone too, the run refuses rather than drop them."""
    path = layout.manifest(STAGE, ds)
    if not path.is_file():
        return []
    found = {(r.subset, r.sequence) for r in refs}
    rows = pq.read_table(path, columns=["subset", "sequence"]).to_pylist()
    gone = sorted({(r["subset"], r["sequence"]) for r in rows} - found)
    keep = [SourceRef(ds, sub, seq, "", ()) for sub, seq in gone]
    lost = [r.key for r in keep if not (layout.work_dir(STAGE, ds) / f"{staging_name(r)}.json").is_file()]
    if lost:
        raise InfrastructureError(
            f"{len(lost)} published sequences have no source now and no staging to republish them from "
            f"(first: {lost[0]}); is a source folder missing? Nothing was changed. Pass --prune to remove them")
    return keep


def _process_job(job: tuple[SourceRef, str], cfg: IngestConfig) -> SequenceResult:
    ref, work_dir = job
    return process_sequence(ref, cfg, work_dir)


def _account(summary: IngestSummary, r: SequenceResult) -> None:
    if r.status == "failed":
        summary.failed += 1
        assert r.failure is not None
        summary.failures.append(r.failure)
        summary.failures_by_reason[r.failure.reason] += 1
    elif r.status == "cached":
        summary.cached += 1
    else:
        summary.built += 1
    summary.clips += r.n_clips
    summary.peak_rss_mb = max(summary.peak_rss_mb, r.peak_rss_mb)
