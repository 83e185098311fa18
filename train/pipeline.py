"""`make train`: split -> pin -> evaluator -> DiT -> test-split reconstructions -> the paper's table.

Every run reads one pinned store version (tags `run-<id>` on the tables it reads) and writes under
`<root>/runs/train/<run id>/`: the evaluator's and the DiT's checkpoints (safetensors + JSON) and
TensorBoard events. Results go back into the store: `evals` (one row per method x metric, naming the
run, split, store versions and every model id) and `v2m` (the DiT's reconstructed motion tokens, of the
test clips and of the train clips, and
pooled latent for each test clip, with the DiT's content hash). Clips without video tokens get a
`no_video_tokens` row in `ledger/train.parquet`, never a crash.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import torch

from ingest.failures import Failure, write_ledger
from robomirror import FORMAT_VERSION
from robomirror.atomic import digest_of, publish_bytes
from robomirror.dit import DiTConfig, NormalizedDiT, reconstruct
from robomirror.flow import FlowConfig
from robomirror.paths import DataLayout
from robomirror.trainer import TrainConfig, fit, load_checkpoint, newest_valid_checkpoint
from robomirror.writer_lock import writer_lock
from train.data import (
    CLIPS,
    ClipDataset,
    DataError,
    SplitConfig,
    collate,
    current_versions,
    ensure_split,
    pin_store,
    validation_split,
)
from train.early_stop import EarlyStopConfig, EarlyStopResult, fit_early_stopping
from train.evaluator import EvaluatorConfig, MotionTextEncoder, info_nce, weights_id
from train.metrics import INTERVAL, POOL, Evaluation, Verdict, evaluate, separation
from train.tasks import DiTTask, EvaluatorTask, StoreSide

EVALS, V2M = "evals", "v2m"
EVAL_SCHEMA = pa.schema([("run_id", pa.string()), ("method", pa.string()), ("metric", pa.string()),
                         ("value", pa.float64()), ("ci95", pa.float64()), ("batch_size", pa.int32()),
                         ("n_clips", pa.int32()), ("split_id", pa.string()), ("store_versions", pa.string()),
                         ("dit_id", pa.string()), ("evaluator_id", pa.string()), ("vae_id", pa.string()),
                         ("vlm_id", pa.string()), ("objective", pa.string()), ("format_version", pa.int32()),
                         # added with pools of 32: the interval's bounds, how it was computed, and whether
                         # the row is a measurement at all (False: fewer test clips than a pool)
                         ("ci_lo", pa.float64()), ("ci_hi", pa.float64()), ("interval", pa.string()),
                         ("measured", pa.bool_())])
VERDICT_METRICS = ("R@1", "R@2", "R@3", "MM-Dist", "FID")


@dataclass(frozen=True)
class TrainRunConfig:
    preset: str = "tiny"  # DiT size: "tiny" (CPU) or "paper" (12 x 1024, 8 heads)
    dit_steps: int = 300
    evaluator_steps: int = 400  # at most: early stopping on the validation clips usually ends it sooner
    evaluator_every: int = 20  # evaluator steps between validations
    evaluator_patience: int = 5  # validations without a new best before the evaluator stops
    val_fraction: float = 0.2  # of the train split's sequences, held out to early-stop the evaluator
    global_batch: int = 8
    lr: float = 1e-3
    objective: str = "velocity"  # "velocity" | "x0" | "eps" (Table 15)
    method: str = "dit"  # "dit" (reconstruction) | "align" (the InfoNCE adapter baseline, Table 4)
    inference_steps: int = 2
    seed: int = 0
    split: SplitConfig = SplitConfig()
    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    eval_replications: int = 20  # random pool draws per query (R-precision)


@dataclass
class TrainSummary:
    run_id: str
    run_dir: Path
    split_id: str
    versions: dict[str, int]
    n_train: int
    n_test: int
    skipped: list[str]
    table: dict[str, list] = field(default_factory=dict)  # method -> metric rows
    batch_size: int = 0  # R-precision pool size used (32, or the test split when it is smaller)
    evals: dict[str, Evaluation] = field(default_factory=dict)  # method -> the evaluation (rows, pool, measured)
    verdicts: list[Verdict] = field(default_factory=list)  # Real > ours > shuffled, per metric
    n_val: int = 0  # the evaluator's validation clips (never trained on)
    evaluator_stop: EarlyStopResult | None = None  # None: too few validation clips to stop early
    evaluator_retrieval: dict[str, Evaluation] = field(default_factory=dict)  # "train" / "validation" clips
    dit_id: str = ""
    evaluator_id: str = ""
    samples_per_s: float = 0.0
    steps: int = 0
    final_loss: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def run_train(layout: DataLayout, cfg: TrainRunConfig, resume: bool = False, progress: bool = True) -> TrainSummary:
    t0 = time.perf_counter()
    store = layout.store_dir
    with writer_lock(layout.root, "train split"):
        split = ensure_split(store, cfg.split)
    run_id = digest_of([split.split_id, current_versions(store), asdict(cfg)])[:12]
    versions = pin_store(store, run_id)
    run_dir = layout.root / "runs" / "train" / run_id
    train_side = StoreSide(str(store), versions, split, "train")
    test_side = StoreSide(str(store), versions, split, "test")
    train_ds, test_ds = train_side.dataset(), test_side.dataset()
    if len(train_ds) < 2 or len(test_ds) < 2:
        raise DataError(f"split {split.split_id} has {len(train_ds)} train and {len(test_ds)} test clips with video "
                        "tokens; training needs at least 2 of each")
    summary = TrainSummary(run_id, run_dir, split.split_id, versions, len(train_ds), len(test_ds),
                           sorted(train_ds.skipped + test_ds.skipped))
    _ledger_skipped(layout, summary.skipped)
    video_dim = train_ds[0]["video_tokens"].shape[-1]
    base = dict(global_batch=cfg.global_batch, lr=cfg.lr, seed=cfg.seed, workers=cfg.workers, executor=cfg.executor,
                ray_address=cfg.ray_address)
    logger = _Logger(run_dir / "tensorboard", progress)

    vsplit = validation_split(store, split, versions[CLIPS], cfg.val_fraction, cfg.split.seed)
    ev_side, val_side = StoreSide(str(store), versions, vsplit, "train"), StoreSide(str(store), versions, vsplit, "val")
    summary.n_val = len(val_side.dataset())
    ev_task = EvaluatorTask(ev_side, train_ds.vae_id, EvaluatorConfig(feature_dim=_feature_dim(train_side)))
    evaluator, ev_loss = _train_evaluator(ev_task, val_side, cfg, base, run_dir / "evaluator", resume, logger, summary)
    summary.evaluator_id = weights_id(evaluator)

    flow = FlowConfig(objective=cfg.objective, inference_steps=cfg.inference_steps)
    dit_cfg = DiTConfig.preset(cfg.preset, video_dim=video_dim)
    model_cfg = TrainConfig(steps=cfg.dit_steps, ckpt_every=max(cfg.dit_steps // 4, 1), **base)
    if cfg.method == "align":
        from train.align import AlignAdapter, AlignConfig, AlignTask, adapt

        task = AlignTask(train_side, AlignConfig(video_dim=video_dim, motion_tokens=dit_cfg.motion_tokens))
        label, model_dir = "ours (align baseline, InfoNCE)", run_dir / "align"
    else:
        task = DiTTask(train_side, dit_cfg, flow)
        label, model_dir = f"ours (DiT, {cfg.objective})", run_dir / "dit"
    if (run_dir / "run.json").is_file():  # a resumed run must read the latents it was trained on
        before = json.loads((run_dir / "run.json").read_text())
        if (before.get("vae_id"), before.get("vlm_id")) != (train_ds.vae_id, train_ds.vlm_id):
            raise DataError(f"{run_dir} was trained on VAE {before.get('vae_id')} and video encoder "
                            f"{before.get('vlm_id')}, but the store now holds {train_ds.vae_id} and "
                            f"{train_ds.vlm_id}: its checkpoints do not fit; start a new run")
    publish_bytes(run_dir / "run.json", json.dumps({
        "run_id": run_id, "split_id": split.split_id, "store_versions": versions, "vae_id": train_ds.vae_id,
        "vlm_id": train_ds.vlm_id, "evaluator_split_id": vsplit.split_id, "method": cfg.method,
        "dit": dit_cfg.to_dict(), "flow": asdict(flow),
        "config": asdict(cfg), "format_version": FORMAT_VERSION}, sort_keys=True, indent=1).encode())
    res = _fit_or_load(task, model_cfg, model_dir, resume, logger)
    if cfg.method == "align":
        model = AlignAdapter(task.cfg)

        def generate(video_from=None):
            return adapt(model, batch, video_from)
    else:
        model = NormalizedDiT(dit_cfg)

        def generate(video_from=None):
            return reconstruct(model, batch, flow, cfg.seed, video_from=video_from)
    load_checkpoint(newest_valid_checkpoint(model_dir)[0], model)
    model.eval()
    summary.dit_id = weights_id(model)
    summary.samples_per_s = res["samples_per_s"]
    summary.steps = cfg.dit_steps
    summary.final_loss = {"evaluator": ev_loss, cfg.method: res["loss"]}
    logger.close()

    batch = collate([test_ds[i] for i in range(len(test_ds))], dit_cfg.motion_tokens)
    with torch.no_grad():
        text = evaluator.embed_text(batch["text_emb"]).numpy()

        def motion_emb(tokens: torch.Tensor) -> np.ndarray:
            frames, mask = ev_task.frames(tokens, batch["motion_mask"])
            return evaluator.embed_motion(frames, mask).numpy()

        real = motion_emb(batch["motion_tokens"])
        ours_tokens = generate()
        ours = motion_emb(ours_tokens)
        shift = torch.roll(torch.arange(len(test_ds)), 1)  # each clip conditioned on another clip's video
        shuffled = motion_emb(generate(video_from=shift))
    names = ("Real (ground truth)", label, "shuffled video (floor)")
    for method, emb in zip(names, (real, ours, shuffled), strict=True):
        summary.evals[method] = evaluate(emb, text, real, seed=cfg.seed, draws=cfg.eval_replications)
        summary.table[method] = summary.evals[method].rows
    summary.batch_size = summary.evals[label].pool
    summary.verdicts = [separation(m, *(summary.evals[k].row(m) for k in names)) for m in VERDICT_METRICS]
    summary.evaluator_retrieval = {side: _retrieval(evaluator, ev_task, ds, cfg.seed, cfg.eval_replications)
                                   for side, ds in (("train", ev_side.dataset()), ("validation", val_side.dataset()))
                                   if len(ds) >= 2}
    parts = [(batch, ours_tokens)]
    if cfg.method == "dit":  # the train clips' reconstructions too: the policy's student trains on them (§3.3)
        for lo in range(0, len(train_ds), 64):
            b = collate([train_ds[i] for i in range(lo, min(lo + 64, len(train_ds)))], dit_cfg.motion_tokens)
            parts.append((b, reconstruct(model, b, flow, cfg.seed)))
    with writer_lock(layout.root, "train results"):
        _write_results(store, summary, train_ds, cfg, parts)
    summary.seconds = time.perf_counter() - t0
    return summary


def _train_evaluator(task: EvaluatorTask, val_side: StoreSide, cfg: TrainRunConfig, base: dict, out: Path,
                     resume: bool, logger: _Logger, summary: TrainSummary) -> tuple[MotionTextEncoder, float]:
    """The evaluator, early-stopped on the validation clips: the checkpoint of its best validation
    InfoNCE (without validation clips, its last step, and the summary says it was not stopped)."""
    ev_cfg = TrainConfig(steps=cfg.evaluator_steps, ckpt_every=max(cfg.evaluator_steps // 4, 1), **base)
    model = MotionTextEncoder(task.cfg)
    val = val_side.dataset()
    if len(val) < 2:
        res = _fit_or_load(task, ev_cfg, out, resume, logger)
        load_checkpoint(newest_valid_checkpoint(out)[0], model)
        return model.eval(), res["loss"]
    batch = collate([val[i] for i in range(len(val))], 30)
    frames, mask = task.frames(batch["motion_tokens"], batch["motion_mask"])
    chunks = [slice(lo, lo + POOL) for lo in range(0, len(val), POOL)]
    if len(chunks) > 1 and len(val) % POOL < 2:  # a last chunk of one clip has no negatives
        chunks = chunks[:-2] + [slice(chunks[-2].start, len(val))]

    def val_loss(m: MotionTextEncoder, step: int) -> float:
        """InfoNCE on the validation clips in fixed chunks of 32: deterministic, so a resume rescoring a
        checkpoint finds the same value."""
        return float(np.mean([info_nce(*m(frames[c], mask[c], batch["text_emb"][c]), batch["text_emb"][c]).item()
                              for c in chunks]))

    logger.start(task.name, cfg.evaluator_steps)
    stop = fit_early_stopping(task, ev_cfg, out, val_loss, EarlyStopConfig(cfg.evaluator_every, cfg.evaluator_patience),
                              resume=resume, on_report=lambda row: logger.report(task.name, row))
    summary.evaluator_stop = stop
    load_checkpoint(out / stop.best_checkpoint_name, model)
    return model.eval(), stop.train_loss


def _retrieval(evaluator: MotionTextEncoder, task: EvaluatorTask, ds: ClipDataset, seed: int, draws: int) -> Evaluation:
    """The evaluator's own R-precision on ground-truth motions of `ds` (pools of 32 when it has 32 clips)."""
    motion, text = [], []
    with torch.no_grad():
        for lo in range(0, len(ds), 64):
            b = collate([ds[i] for i in range(lo, min(lo + 64, len(ds)))], 30)
            frames, mask = task.frames(b["motion_tokens"], b["motion_mask"])
            motion.append(evaluator.embed_motion(frames, mask).numpy())
            text.append(evaluator.embed_text(b["text_emb"]).numpy())
    m = np.concatenate(motion)
    return evaluate(m, np.concatenate(text), m, seed=seed, draws=draws, fid_bootstrap=0)


def _feature_dim(side: StoreSide) -> int:
    from train.evaluator import load_vae

    return load_vae(Path(side.store_dir), side.dataset().vae_id).model.cfg.feature_dim


class _Logger:
    """TensorBoard scalars (one folder per model) and a progress bar per model (loss, samples/s)."""

    def __init__(self, path: Path, progress: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path, self.progress, self.writers, self.bars, self.totals = path, progress, {}, {}, {}
        self._writer = SummaryWriter

    def start(self, model: str, total_steps: int) -> None:
        self.totals[model] = total_steps

    def report(self, model: str, row: dict) -> None:
        from tqdm import tqdm

        if model not in self.writers:
            self.writers[model] = self._writer(str(self.path / model))
            self.bars[model] = tqdm(total=self.totals.get(model), desc=f"train {model}", unit="step",
                                    disable=not self.progress)
        for k, v in row.items():
            if k != "step":
                self.writers[model].add_scalar(k, v, row["step"])
        bar = self.bars[model]
        bar.update(row["step"] - bar.n)
        bar.set_postfix(loss=f"{row['loss']:.4f}", samples_s=f"{row['samples_per_s']:.0f}")

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        for b in self.bars.values():
            b.close()


def _fit_or_load(task, cfg: TrainConfig, out: Path, resume: bool, logger: _Logger) -> dict:
    ckpt, state, _ = newest_valid_checkpoint(out)  # a corrupt newest one is reported and skipped; TrainError if none valid
    if ckpt is not None:
        if state["step"] >= cfg.steps:  # already trained by this run id: reuse
            last = state["history"][-1] if state["history"] else {"loss": float("nan"), "samples_per_s": 0.0}
            return {"loss": last["loss"], "samples_per_s": last["samples_per_s"]}
        if not resume:
            raise DataError(f"{out} holds an unfinished run (step {state['step']} of {cfg.steps}); pass --resume")
    logger.start(task.name, cfg.steps)
    res = fit(task, cfg, out, resume=ckpt is not None, on_report=lambda row: logger.report(task.name, row))
    last = res.history[-1] if res.history else {"loss": float("nan")}
    return {"loss": last["loss"], "samples_per_s": res.samples_per_s}


def _ledger_skipped(layout: DataLayout, clip_ids: list[str]) -> None:
    write_ledger(layout.ledger("train"), [Failure("store", c, str(layout.store_dir), "train", "no_video_tokens",
                                                  "the clip has no video tokens (motion-only or unreadable video): "
                                                  "it cannot condition the DiT") for c in clip_ids])


def _write_results(store: Path, s: TrainSummary, ds: ClipDataset, cfg: TrainRunConfig,
                   parts: list[tuple[dict, torch.Tensor]]) -> None:
    """The evaluation rows, and a v2m row per reconstructed clip (the test split's, then the train split's)."""
    import lancedb

    db = lancedb.connect(str(store))
    rows = [{"run_id": s.run_id, "method": method, "metric": r.name, "value": r.mean, "ci95": r.ci95,
             "ci_lo": r.lo, "ci_hi": r.hi, "interval": INTERVAL, "measured": s.evals[method].measured,
             "batch_size": s.evals[method].pool, "n_clips": s.n_test, "split_id": s.split_id,
             "store_versions": json.dumps(s.versions, sort_keys=True), "dit_id": s.dit_id,
             "evaluator_id": s.evaluator_id, "vae_id": ds.vae_id, "vlm_id": ds.vlm_id,
             "objective": cfg.objective if cfg.method == "dit" else "align-infonce",
             "format_version": FORMAT_VERSION} for method, metric_rows in s.table.items() for r in metric_rows]
    _replace_rows(db, EVALS, pa.Table.from_pylist(rows, schema=EVAL_SCHEMA), f"run_id = '{s.run_id}'")
    dim = parts[0][1].shape[-1]
    v2m_schema = pa.schema([("clip_id", pa.string()), ("dit_id", pa.string()), ("run_id", pa.string()),
                            ("n_tokens", pa.int32()), ("tokens", pa.list_(pa.list_(pa.float16(), dim))),
                            ("pooled", pa.list_(pa.float32(), dim)), ("format_version", pa.int32())])
    v2m = []
    for batch, tokens in parts:
        mask = batch["motion_mask"]
        for i, clip_id in enumerate(batch["clip_id"]):
            n = int(mask[i].sum())
            tok = tokens[i, :n].numpy()
            v2m.append({"clip_id": clip_id, "dit_id": s.dit_id, "run_id": s.run_id, "n_tokens": n,
                        "tokens": tok.astype(np.float16).tolist(), "pooled": tok.mean(0).astype(np.float32).tolist(),
                        "format_version": FORMAT_VERSION})
    _replace_rows(db, V2M, pa.Table.from_pylist(v2m, schema=v2m_schema), f"run_id = '{s.run_id}'")


def _replace_rows(db, name: str, table: pa.Table, where: str) -> None:
    """Rows of this run replace its earlier rows (a rerun of one run id is idempotent). A table written
    before columns were added is rewritten once with them (null in the old rows)."""
    if name in db.table_names():
        t = db.open_table(name)
        if t.schema != table.schema:
            old = t.to_arrow()
            keep = pa.Table.from_pylist([r for r in old.to_pylist()], schema=pa.schema(
                [f for f in table.schema if f.name in old.schema.names]))
            missing = [f for f in table.schema if f.name not in old.schema.names]
            for f in missing:
                keep = keep.append_column(f, pa.nulls(keep.num_rows, f.type))
            db.create_table(name, data=keep.select(table.schema.names).cast(table.schema), mode="overwrite")
            t = db.open_table(name)
        t.delete(where)
        t.add(table)
    else:
        db.create_table(name, data=table)


def read_evals(store: Path, run_id: str | None = None) -> list[dict]:
    path = Path(store) / f"{EVALS}.lance"
    if not path.exists():
        return []
    t = lance.dataset(str(path)).to_table(filter=None if run_id is None else f"run_id = '{run_id}'")
    return t.to_pylist()
