"""The ingest job: discover sources, stage every sequence (Ray tasks), pack shards, report."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ingest.bones_seed import discover_bones_seed
from ingest.config import IngestConfig
from ingest.failures import Failure, Reason, write_ledger
from ingest.g1_csv import discover_g1_csv
from ingest.lerobot_import import discover_lerobot
from ingest.manifest import (
    MANIFEST_SCHEMA,
    PublishedSequence,
    manifest_row,
    published_sequences,
    staged_modalities,
    stored_name,
)
from ingest.motionx import discover_motionx
from ingest.nymeria import discover_nymeria
from ingest.scene_holosoma import discover_holosoma_climb
from ingest.scene_videomimic import discover_videomimic
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
            "bones_seed": discover_bones_seed, "lerobot": discover_lerobot,
            "holosoma_climb": discover_holosoma_climb,  # human mocap with the scene it climbs (issue 22)
            "videomimic": discover_videomimic}  # VideoMimic real2sim: SMPL + the reconstructed mesh (issue 22)
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
    """Ingest `sources` into the data root's shards.

    A published clip leaves (or loses its video or text) only when the user asks, `prune`: a sequence
    whose source is gone as a whole stays published from its staging; one whose source lacks a file it
    was published with stops the run (InfrastructureError naming every missing path, nothing changed).
    A source that is there but bad now is removed with a ledger row (never republished from stale bytes)."""
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

    # the retention rule, checked before anything is staged: see `_partly_missing`
    published = {ds: published_sequences(layout.manifest(STAGE, ds)) for ds in by_dataset}
    if not prune:
        _refuse_if(_partly_missing(refs, published), _PARTLY_MISSING)

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

    plans = {}
    for ds, ds_refs in sorted(by_dataset.items()):
        keep = [] if prune else _published_without_source(layout, ds, ds_refs, published[ds])
        summary.kept_without_source += len(keep)
        stems = sorted(((r.subset, r.sequence), staging_name(r)) for r in [*ds_refs, *keep] if r.problem is None)
        plans[ds] = (stems, load_staged(layout.work_dir(STAGE, ds), [stem for _, stem in stems]))
    if not prune:  # the backstop: a clip never loses a modality it was published with, whatever the cause
        _refuse_if([p for ds, (stems, staged) in plans.items() for p in _modalities_lost(ds, stems, staged,
                                                                                         published[ds])], _LOST)
    for ds, (_, staged) in plans.items():
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


def _published_without_source(layout: DataLayout, ds: str, refs: list[SourceRef],
                               published: dict[tuple[str, str], PublishedSequence]) -> list[SourceRef]:
    """Sequences the current manifest publishes whose source was not found this run. Without --prune
    they stay published from their staging; if that is gone too, the run refuses rather than drop them.
    Names are compared in their file-system form (`ingest.manifest.fs_name`), never their display form."""
    found = {(r.subset, r.sequence) for r in refs}
    keep = [SourceRef(ds, sub, seq, "", ()) for sub, seq in sorted(set(published) - found)]
    lost = [r.key for r in keep if not (layout.work_dir(STAGE, ds) / f"{staging_name(r)}.json").is_file()]
    if lost:
        raise InfrastructureError(
            f"{len(lost)} published sequences have no source now and no staging to republish them from: "
            f"{', '.join(stored_name(k) for k in lost)}; is a source folder missing? Nothing was changed. "
            f"Pass --prune to remove them")
    return keep


# The retention rule, in one place: a published clip leaves a generation (or loses a modality) only when
# the user asks (--prune). A sequence whose source is found but lacks a file it was published with (a
# modality folder moved, a drive not mounted, a half-synced copy) is an infrastructure condition, not
# bad input: the run stops before staging and names every missing path; nothing is staged, packed,
# published or ledgered. A source that is whole but bad now (NaN, unreadable) is bad input: one ledger
# row, and its stale staging is never republished.
_PARTLY_MISSING = ("source files of published sequences are not found (a modality folder moved, a drive not "
                   "mounted, a half-synced copy?); nothing was staged")
_LOST = ("published clips would lose a modality they were published with (video or text), although every "
         "source file they were read from is there")


def _partly_missing(refs: list[SourceRef], published: dict[str, dict[tuple[str, str], PublishedSequence]]) -> list[str]:
    """One line per source file a published sequence was read from that is not found now."""
    problems = []
    for r in refs:
        pub = published.get(r.dataset, {}).get((r.subset, r.sequence))
        if pub is None or r.problem is not None:
            continue
        now = dict(r.files)
        for role, was in sorted(pub.sources.items()):
            path = now.get(role, was)
            if not Path(path).is_file():
                where = stored_name(path) + (f" (published from {stored_name(was)})" if was != path else "")
                problems.append(f"{stored_name(r.key)}: {role} {where}")
    return problems


def _modalities_lost(ds: str, stems: list, staged: list[tuple[Path, dict]],
                     published: dict[tuple[str, str], PublishedSequence]) -> list[str]:
    """One line per published clip whose span is staged again without the video or text it had."""
    sides = {tar.name[: -len(".tar")]: side for tar, side in staged}
    problems = []
    for name, stem in stems:
        pub, side = published.get(name), sides.get(stem)
        if pub is None or side is None:
            continue
        for span, (video, text) in sorted(staged_modalities(side).items()):
            had_video, had_text = pub.clips.get(span, (False, False))
            lost = [m for m, was, now in (("video", had_video, video), ("text", had_text, text)) if was and not now]
            if lost:
                problems.append(f"{ds}/{stored_name(name[0])}/{stored_name(name[1])} frames {span[0]}-{span[1]}: "
                                f"no {' or '.join(lost)} now")
    return problems


def _refuse_if(problems: list[str], what: str) -> None:
    if problems:
        raise InfrastructureError(
            f"{len(problems)} {what}, so nothing was published or retracted: the published shards, manifest "
            f"and ledger are as they were. Restore what is missing and rerun, or pass --prune to republish from "
            f"what is on disk (clips then lose what is missing, or leave):\n  " + "\n  ".join(problems))


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
