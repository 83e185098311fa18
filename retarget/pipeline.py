"""The retarget job: every ingest shard -> one task -> staged robot motions -> retarget shards.

Same contracts as ingest: one Ray task per unit (here an ingest shard), staging cached by the
input shard's sha256 and the config, deterministic packing, a manifest with every metric and
verdict, and a failure ledger with one row per clip that could not be retargeted.
"""

from __future__ import annotations

import io
import json
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ingest.failures import Failure, write_ledger
from ingest.scene import load_scene
from retarget.clip import retarget_clip
from retarget.config import RetargetConfig
from retarget.manifest import MANIFEST_SCHEMA, manifest_row
from retarget.robot import G1
from retarget.scene_ground import HEIGHT_MAP_CELL_M, HEIGHT_MAP_N, local_height_map, robot_scene
from robomirror.atomic import npz_bytes, publish_with, sha256_file, sweep_temp_files
from robomirror.errors import InfrastructureError
from robomirror.executor import run_tasks
from robomirror.paths import DataLayout
from robomirror.shards import (
    PackResult,
    cached_staging,
    load_staged,
    pack,
    published_shards,
    stage_samples,
    verify_shard,
)
from robomirror.tario import read_tar
from robomirror.writer_lock import writes_data_root

STAGE = "retarget"
SOURCE_STAGE = "ingest"
_ROBOTS: dict[tuple, G1] = {}


@dataclass(frozen=True)
class ShardJob:
    dataset: str
    shard: str  # path of the ingest shard
    work_dir: str


@dataclass(frozen=True)
class ShardResult:
    shard: str
    status: str  # "built" | "cached" | "failed" | "infra_error" (the machine failed: the run must stop)
    clips: int
    frames: int
    ik_seconds: float
    failures: tuple[Failure, ...]
    reports: tuple[dict, ...] = ()


@dataclass
class RetargetSummary:
    shards_in: int = 0
    built: int = 0
    cached: int = 0
    clips: int = 0
    failed_clips: int = 0
    frames: int = 0
    ik_seconds: float = 0.0
    seconds: float = 0.0
    passed: int = 0
    mpkpe_median_m: float = float("nan")
    skate_median_cm_s: float = float("nan")
    penetration_median_cm: float = float("nan")
    per_dataset: dict[str, PackResult] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    failures_by_reason: Counter = field(default_factory=Counter)

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.ik_seconds if self.ik_seconds > 0 else 0.0


def robot_for(cfg: RetargetConfig) -> G1:
    key = (cfg.robot, cfg.robot_xml)
    if key not in _ROBOTS:
        _ROBOTS[key] = G1(cfg.robot, cfg.robot_xml)
    return _ROBOTS[key]


def _samples(tar_path: str) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    for name, data in read_tar(tar_path):
        key, suffix = name.split(".", 1)
        out.setdefault(key, {})[suffix] = data
    return out


def process_shard(job: ShardJob, cfg: RetargetConfig) -> ShardResult:
    stem = Path(job.work_dir) / Path(job.shard).stem
    tar_path, side_path = stem.with_suffix(".tar"), stem.with_suffix(".json")
    try:
        header = {"ingest_shard": Path(job.shard).name, "ingest_sha256": sha256_file(Path(job.shard)),
                  "config": cfg.fingerprint()}
    except OSError as e:
        return _infra(job, f"cannot read {job.shard}: {e}")
    side = cached_staging(side_path, tar_path, header)  # failures of a cached shard come back from its sidecar
    if side is not None:
        return ShardResult(job.shard, "cached", len(side["samples"]), 0, 0.0,
                           tuple(Failure(**f) for f in side.get("failures", ())), tuple(s["meta"] for s in side["samples"]))
    robot = robot_for(cfg)
    staged, failures, reports = [], [], []
    timing: dict[str, dict] = {}
    frames, ik_s = 0, 0.0
    shapes: dict[tuple[str, str], object] = {}  # shape fit cached per subject (dataset, sequence)
    for key, members in sorted(_samples(job.shard).items()):
        meta = json.loads(members["meta.json"])
        try:
            human = np.load(io.BytesIO(members["human.npz"]), allow_pickle=False)
            subject = (meta["dataset"], meta["sequence"])
            t0 = time.perf_counter()
            params = {k[len("param_"):]: human[k] for k in human.files if k.startswith("param_")}
            scene = None
            if meta.get("scene"):  # issue 22: <root>/shards/ingest/<ds>/<shard>.tar -> <root>/scenes/<id>.npz
                scene = load_scene(Path(job.shard).parents[3], meta["scene"]["scene_id"])
            res = retarget_clip(robot, tuple(str(n) for n in human["joint_names"]), human["joint_pos_w"],
                                float(human["fps"]), cfg, shapes.get(subject), params, scene)
            ik_s += time.perf_counter() - t0
            shapes.setdefault(subject, _shape_from(res.report))
        except Exception as e:  # noqa: BLE001 - one bad clip must not cost the shard
            if cfg.on_error == "raise":
                raise
            failures.append(Failure(meta.get("dataset", job.dataset), meta.get("sequence", key), f"{job.shard}#{key}",
                                    STAGE, "retarget_error", f"{type(e).__name__}: {e} | "
                                    f"{traceback.format_exc(limit=2).splitlines()[-1]}"))
            continue
        frames += res.motion.n_frames
        report = {"clip_id": key, "format_version": 1, "dataset": meta["dataset"], "subset": meta["subset"],
                  "sequence": meta["sequence"], "view": meta["view"], "ingest_shard": Path(job.shard).name,
                  "body_model": meta["body_model"], "config": cfg.fingerprint(), **res.report}
        # wall-clock numbers would make the shard bytes differ between runs: they go to the staging
        # sidecar and from there to <root>/runs/retarget_timing.parquet (catalog view retarget_timing)
        timing[key] = {**report.pop("timing"), "n_frames": res.motion.n_frames}
        out = {"robot.npz": npz_bytes(res.motion.to_beyondmimic(robot)),
               "retarget.json": json.dumps(report, sort_keys=True, indent=1).encode()}
        if scene is not None:  # issue 22: the terrain around the root per frame; flat clips keep their bytes
            out["height_map.npz"] = npz_bytes(height_map_member(scene, report["scene"]["scale"], res.motion))
        staged.append((key, out, report))
        reports.append(report)
    try:
        stage_samples(tar_path, side_path, staged, {**header, "failures": [asdict(f) for f in failures],
                                                    "timing": timing})
    except OSError as e:  # full or read-only work folder: not the clips' fault
        return _infra(job, f"cannot write staging {tar_path}: {e}")
    return ShardResult(job.shard, "built", len(staged), frames, ik_s, tuple(failures), tuple(reports))


def height_map_member(scene, root_scale: float, motion) -> dict[str, np.ndarray]:
    """A scene clip's `height_map.npz`: `height_map_m` (T, 11, 11) float32, the robot-scale scene's surface
    under a level grid in the root's heading frame minus the root height, per frame of the retargeted
    motion (retarget/scene_ground.py `local_height_map`), with the grid's definition beside it."""
    hm = local_height_map(robot_scene(scene, root_scale), motion.root_pos_w, motion.root_quat_wxyz)
    return {"format_version": np.int32(1), "height_map_m": hm, "cell_m": np.float64(HEIGHT_MAP_CELL_M),
            "n": np.int32(HEIGHT_MAP_N), "fps": np.float64(motion.fps), "scene_id": np.array(scene.scene_id),
            "frame": np.array("root heading (x forward = rows, y left = columns), level; heights minus root z")}


def _infra(job: ShardJob, detail: str) -> ShardResult:
    return ShardResult(job.shard, "infra_error", 0, 0, 0.0,
                       (Failure(job.dataset, Path(job.shard).name, job.shard, STAGE, "infrastructure", detail),))


TIMING_SCHEMA = pa.schema([("clip_id", pa.string()), ("dataset", pa.string()), ("n_frames", pa.int32()),
                           ("ik_frames_per_s", pa.float64()), ("total_frames_per_s", pa.float64())])


def _publish_timing(layout: DataLayout, stems: dict[str, list[str]]) -> None:
    """Per-clip retarget speed of the published generation, as measured when each clip was built."""
    rows = []
    for ds, ds_stems in sorted(stems.items()):
        for _, side in load_staged(layout.work_dir(STAGE, ds), ds_stems):
            for clip_id, t in sorted(side.get("timing", {}).items()):
                rows.append({"clip_id": clip_id, "dataset": ds, **t})
    table = pa.Table.from_pylist(rows, schema=TIMING_SCHEMA)
    publish_with(layout.root / "runs" / "retarget_timing.parquet", lambda f: pq.write_table(table, f))


def _drop_unused_staging(work_dir: Path, stems: set[str]) -> None:
    """Staging made from ingest shards that are no longer published can never be used again."""
    for p in sorted(work_dir.glob("shard-*")):
        if p.name.split(".", 1)[0] not in stems:
            p.unlink(missing_ok=True)


def _shape_from(report: dict):
    from retarget.shape_fit import ShapeFit

    return ShapeFit(**report["shape_fit"])


@writes_data_root("retarget run")
def run_retarget(layout: DataLayout, cfg: RetargetConfig, executor: str = "ray", ray_address: str | None = None,
                 num_cpus: int | None = None, progress: bool = True,
                 target_bytes: int = 32 << 20) -> RetargetSummary:
    t0 = time.perf_counter()
    s = RetargetSummary()
    sweep_temp_files(layout.root / "work" / STAGE)
    sweep_temp_files(layout.root / "shards" / STAGE)
    jobs = []
    datasets = sorted(p.name for p in (layout.root / "shards" / SOURCE_STAGE).glob("*") if p.is_dir())
    for ds in datasets:
        layout.work_dir(STAGE, ds).mkdir(parents=True, exist_ok=True)
        for shard in published_shards(layout.manifest(SOURCE_STAGE, ds)):  # the committed generation only
            if verify_shard(shard) is None:
                s.failures.append(Failure(ds, shard.name, str(shard), STAGE, "bad_input_shard",
                                          "ingest shard does not match its sidecar; rerun `make shards`"))
                continue
            jobs.append(ShardJob(ds, str(shard), str(layout.work_dir(STAGE, ds))))
    s.shards_in = len(jobs)
    reports: list[dict] = []
    bar = tqdm(total=len(jobs), desc="retarget shards", unit="shard", disable=not progress)
    infra: list[str] = []
    for job, r in run_tasks(process_shard, jobs, (cfg,), executor, ray_address, num_cpus):
        if not isinstance(r, BaseException) and r.status == "infra_error":
            infra.append(r.failures[0].detail)
        elif isinstance(r, BaseException):
            s.failures.append(Failure(job.dataset, Path(job.shard).name, job.shard, STAGE, "worker_crashed",
                                      f"{type(r).__name__}: {r}"))
        else:
            s.built += r.status == "built"
            s.cached += r.status == "cached"
            s.frames += r.frames
            s.ik_seconds += r.ik_seconds
            s.failures.extend(r.failures)
            reports.extend(r.reports)
        bar.update(1)
    bar.close()
    if infra:  # stop before packing: nothing is published, retracted or ledgered from a broken machine
        raise InfrastructureError(f"{len(infra)} of {len(jobs)} ingest shards hit an infrastructure error, so nothing "
                                  f"was published (the previous shards, manifest and ledger are untouched); "
                                  f"first: {infra[0]}")
    for ds in datasets:
        stems = [Path(j.shard).stem for j in jobs if j.dataset == ds]
        staged = load_staged(layout.work_dir(STAGE, ds), stems)
        res = pack(staged, layout.shard_dir(STAGE, ds), layout.manifest(STAGE, ds), target_bytes,
                   manifest_row, MANIFEST_SCHEMA)
        s.per_dataset[ds] = res
        s.clips += res.clips
        _drop_unused_staging(layout.work_dir(STAGE, ds), set(stems))
    s.failed_clips = len(s.failures)
    s.failures_by_reason = Counter(f.reason for f in s.failures)
    if reports:
        s.passed = sum(r["stability"]["passed"] for r in reports)
        s.mpkpe_median_m = float(np.median([r["metrics"]["mpkpe_aligned_mean_m"] for r in reports]))
        s.skate_median_cm_s = float(np.median([r["metrics"]["foot_skate_cm_s"] for r in reports]))
        s.penetration_median_cm = float(np.median([r["metrics"]["penetration_cm"] for r in reports]))
    write_ledger(layout.ledger(STAGE), s.failures)
    _publish_timing(layout, {ds: [Path(j.shard).stem for j in jobs if j.dataset == ds] for ds in datasets})
    s.seconds = time.perf_counter() - t0
    return s
