"""One training loop for every model we train (DiT, evaluator, alignment baseline; the motion VAE next),
on one process or N Ray Train workers (TorchTrainer, DDP: gloo on CPU, NCCL on GPU), the same code.

Determinism is by construction, not by saved generator states:
- the data cursor is the global step: step s takes positions [s*B, (s+1)*B) of an endless stream of
  epoch permutations (epoch e = a permutation seeded by (seed, e)); worker r of W takes every W-th of
  them, so W workers see exactly the samples one worker sees at the same global batch B;
- every random draw of a step (noise, τ) comes from a generator seeded by (seed, step) over the whole
  global batch and each worker slices its rows, so the draws do not depend on W either;
- DDP averages the per-worker mean losses' gradients = the global mean's gradient when every worker
  has B/W samples (B % W must be 0, checked).
So 2 workers match 1 worker up to float summation order, and a resumed run, which reloads weights,
optimizer state and the step, continues exactly.

Checkpoints: `<out>/ckpt-<step>/` = model.safetensors + optim.safetensors + state.json (step, epoch,
seed, config, param groups, history), written into a temp folder and renamed (atomic); `<out>/latest`
names the newest. No pickle anywhere.

Resume reads checkpoints defensively: every file of a checkpoint is read and checked (each tensor file
parses in full, state.json is JSON with its keys) before anything is loaded into the model. A corrupt
one (a truncated file, a disk error, a missing file) is reported by path and reason, and the run resumes
from the newest valid checkpoint instead; with none valid it refuses, listing each one and why.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from robomirror.atomic import fsync_dir, publish_bytes
from robomirror.errors import ConfigError, RoboMirrorError

CKPT_PREFIX = "ckpt-"


class TrainError(RoboMirrorError):
    """Training cannot start or resume as asked."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 200  # optimizer steps in all (a resumed run stops at the same step)
    global_batch: int = 16  # samples per step over all workers
    lr: float = 1e-3  # Adam (paper Table 8: 1e-3, betas 0.9/0.999)
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    seed: int = 0
    ckpt_every: int = 50  # steps between checkpoints (the last step always writes one)
    log_every: int = 10  # steps between reports (every worker reports at the same steps)
    workers: int = 1  # Ray Train workers; 1 with executor "local" runs in this process
    executor: str = "local"  # "local" (this process, world size 1) or "ray" (TorchTrainer, any size)
    ray_address: str | None = None  # a cluster's address for executor "ray"
    use_gpu: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.executor not in ("local", "ray"):
            problems.append(f"executor must be 'local' or 'ray', got {self.executor!r}")
        if self.executor == "local" and self.workers != 1:
            problems.append("executor 'local' runs one worker; use executor 'ray' for more")
        if self.workers < 1 or self.global_batch < 1 or self.steps < 1:
            problems.append("workers, global_batch and steps must be >= 1")
        elif self.global_batch % self.workers:
            problems.append(f"global_batch ({self.global_batch}) must be a multiple of workers ({self.workers}) so "
                            "every worker has the same share and DDP's mean is the global mean")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))


class Task(Protocol):
    """What a model brings to the loop. Everything it holds must be picklable by Ray (no open files)."""

    name: str

    def build_model(self) -> torch.nn.Module: ...

    def dataset(self) -> torch.utils.data.Dataset: ...

    def collate(self, items: list) -> Any: ...

    def loss(self, model: torch.nn.Module, batch: Any, gen: torch.Generator, rows: slice,
             global_batch: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean loss over this worker's rows of the step; `gen` is seeded by (seed, step) and draws for
        the whole global batch, of which `rows` are this worker's."""
        ...


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    samples_per_s: float
    history: list[dict] = field(default_factory=list)
    resumed_from: int | None = None
    skipped_checkpoints: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of corrupt ones


def stream_indices(n: int, seed: int, start: int, count: int) -> np.ndarray:
    """Positions [start, start+count) of the endless stream of epoch permutations of range(n)."""
    out = np.empty(count, dtype=np.int64)
    pos = 0
    while pos < count:
        epoch, offset = divmod(start + pos, n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        take = min(n - offset, count - pos)
        out[pos:pos + take] = perm[offset:offset + take]
        pos += take
    return out


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.default_rng([seed, step, 7]).integers(2**62)))


# ---------------------------------------------------------------------------------------------- checkpoints


def _flat_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, st in state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflat_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(out_dir: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict) -> Path:
    """Atomically write ckpt-<step>/ and point `latest` at it."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    final = out_dir / f"{CKPT_PREFIX}{step:08d}"
    tmp = out_dir / f".tmp-{CKPT_PREFIX}{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    opt_tensors, opt_meta = _flat_optimizer(optimizer.state_dict())
    save_file(opt_tensors, str(tmp / "optim.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "optimizer": opt_meta}, sort_keys=True, indent=1))
    for p in tmp.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(out_dir)
    publish_bytes(out_dir / "latest", final.name.encode())
    return final


def latest_checkpoint(out_dir: Path) -> Path | None:
    p = Path(out_dir) / "latest"
    if not p.is_file():
        return None
    try:
        name = p.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    ckpt = Path(out_dir) / name
    return ckpt if name and (ckpt / "state.json").is_file() else None


class CheckpointError(TrainError):
    """A checkpoint's files cannot be read back whole."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


STATE_KEYS = ("step", "optimizer")  # what save_checkpoint writes for every caller (DAgger, the teacher too)
TRAINER_STATE_KEYS = STATE_KEYS + ("config", "history")  # and what `fit` adds and resumes from


def read_checkpoint(ckpt: Path, optimizer: bool = True, required: tuple[str, ...] = STATE_KEYS) -> tuple[dict, dict | None, dict]:
    """(model tensors, optimizer tensors or None, state) of `ckpt`, every file read and checked first;
    raises CheckpointError naming the file and what is wrong with it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    ckpt = Path(ckpt)

    def tensors(name: str) -> dict:
        try:
            return load_file(str(ckpt / name))
        except FileNotFoundError:
            raise CheckpointError(ckpt / name, "missing") from None
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:  # truncated, corrupt header, EIO
            raise CheckpointError(ckpt / name, f"unreadable safetensors ({type(e).__name__}: {e})") from None

    weights = tensors("model.safetensors")
    try:
        state = json.loads((ckpt / "state.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(ckpt / "state.json", "missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(ckpt / "state.json", f"not valid JSON ({type(e).__name__}: {e})") from None
    missing = [k for k in required if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(ckpt / "state.json", f"lacks {missing}")
    return weights, tensors("optim.safetensors") if optimizer else None, state


def load_checkpoint(ckpt: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Load `ckpt` into `model` (and `optimizer`); nothing is touched unless every file reads whole."""
    weights, opt_tensors, state = read_checkpoint(ckpt, optimizer is not None)
    model.load_state_dict(weights)
    if optimizer is not None:
        optimizer.load_state_dict(_unflat_optimizer(opt_tensors, state["optimizer"]))
    return state


def checkpoints_newest_first(out_dir: Path) -> list[Path]:
    """Every published ckpt-<step> folder, newest step first. A folder carries its final name only once
    all its files are durable (temps start with a dot), so this does not rely on `latest`, which a kill
    between the rename and its own publish leaves one checkpoint behind (or a bad disk leaves unreadable)."""
    return sorted((p for p in Path(out_dir).glob(f"{CKPT_PREFIX}*") if p.is_dir() and p.name[len(CKPT_PREFIX):].isdigit()),
                  key=lambda p: int(p.name[len(CKPT_PREFIX):]), reverse=True)


def _newest_valid(out_dir: Path, optimizer: bool, warn: bool,
                  required: tuple[str, ...] = STATE_KEYS) -> tuple[Path | None, tuple | None, list]:
    skipped: list[tuple[str, str]] = []
    candidates = checkpoints_newest_first(out_dir)
    for ckpt in candidates:
        try:
            read = read_checkpoint(ckpt, optimizer, required)
        except CheckpointError as e:
            skipped.append((str(e.path), e.reason))
            if warn:
                print(f"warning: checkpoint {e.path} is corrupt ({e.reason}); trying an older one", file=sys.stderr)
            continue
        if warn and skipped:
            print(f"warning: resuming from {ckpt} (step {read[2]['step']}): the newer checkpoints are corrupt",
                  file=sys.stderr)
        return ckpt, read, skipped
    if candidates:
        raise TrainError(f"no valid checkpoint to resume in {out_dir}: " + "; ".join(f"{p}: {why}" for p, why in skipped)
                         + "; remove them to start over, or restore a good copy")
    return None, None, []


def newest_valid_checkpoint(out_dir: Path, warn: bool = True) -> tuple[Path | None, dict | None, list[tuple[str, str]]]:
    """The newest checkpoint whose files all read whole: (its path, its state.json, [(path, why)] of corrupt
    newer ones), each corrupt one reported on stderr. (None, None, []) when there is no checkpoint at all;
    TrainError (listing each one and why) when there are some but none is valid."""
    ckpt, read, skipped = _newest_valid(out_dir, True, warn)
    return ckpt, read[2] if read else None, skipped


def load_newest_valid(out_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      warn: bool = True, required: tuple[str, ...] = TRAINER_STATE_KEYS
                      ) -> tuple[Path | None, dict | None, list[tuple[str, str]]]:
    """`newest_valid_checkpoint`, loaded into `model` and `optimizer` (read once)."""
    ckpt, read, skipped = _newest_valid(out_dir, True, warn, required)
    if read is None:
        return None, None, []
    weights, opt_tensors, state = read
    model.load_state_dict(weights)
    optimizer.load_state_dict(_unflat_optimizer(opt_tensors, state["optimizer"]))
    return ckpt, state, skipped


# ---------------------------------------------------------------------------------------------- the loop


def _loop(task: Task, cfg: TrainConfig, out_dir: str, resume: bool, on_report: Callable[[dict], None] | None,
          rank: int, world: int, wrap: Callable[[torch.nn.Module], torch.nn.Module]) -> dict:
    torch.manual_seed(cfg.seed)  # the initial weights: identical on every worker
    torch.use_deterministic_algorithms(True, warn_only=True)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    start, history, resumed_from, skipped = 0, [], None, []
    ckpt, state, skipped = load_newest_valid(Path(out_dir), model, optimizer, warn=rank == 0) if resume \
        else (None, None, [])
    if ckpt is not None:
        if state["config"]["seed"] != cfg.seed or state["config"]["global_batch"] != cfg.global_batch:
            raise TrainError(f"{ckpt} was trained with seed {state['config']['seed']} and global batch "
                             f"{state['config']['global_batch']}; resuming needs the same")
        start, history, resumed_from = state["step"], state["history"], state["step"]
    net = wrap(model)
    data = task.dataset()
    n = len(data)
    if n == 0:
        raise TrainError(f"{task.name}: the dataset is empty")
    per_worker = cfg.global_batch // world
    rows = slice(rank * per_worker, (rank + 1) * per_worker)
    t0, samples = time.perf_counter(), 0
    for step in range(start, cfg.steps):
        idx = stream_indices(n, cfg.seed, step * cfg.global_batch, cfg.global_batch)[rows]
        batch = task.collate([data[int(i)] for i in idx])
        model.train()
        loss, logs = task.loss(net, batch, step_generator(cfg.seed, step), rows, cfg.global_batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        samples += cfg.global_batch
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = {"step": done, "loss": float(loss.detach()), **logs,
                   "samples_per_s": samples / max(time.perf_counter() - t0, 1e-9)}
            if world > 1:  # the mean loss over workers, so the log is the global batch's
                t = torch.tensor([row["loss"]])
                torch.distributed.all_reduce(t)
                row["loss"] = float(t) / world
            history.append(row)
            if on_report is not None:
                on_report(row)  # every worker, the same number of times
        if rank == 0 and (done % cfg.ckpt_every == 0 or done == cfg.steps):
            save_checkpoint(Path(out_dir), done, model, optimizer,
                            {"task": task.name, "config": asdict(cfg), "epoch": done * cfg.global_batch // n,
                             "seed": cfg.seed, "history": history})
    elapsed = time.perf_counter() - t0
    return {"step": cfg.steps, "samples_per_s": samples / max(elapsed, 1e-9), "history": history,
            "resumed_from": resumed_from, "skipped_checkpoints": [list(s) for s in skipped]}


def fit(task: Task, cfg: TrainConfig, out_dir: Path, resume: bool = False,
        on_report: Callable[[dict], None] | None = None) -> TrainResult:
    """Train `task` to `cfg.steps`, writing checkpoints under `out_dir`; `resume` continues from `latest`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume and checkpoints_newest_first(out_dir):
        raise TrainError(f"{out_dir} already holds checkpoints; pass resume to continue them or use another folder")
    if cfg.executor == "local":
        res = _loop(task, cfg, str(out_dir), resume, on_report, 0, 1, lambda m: m)
    else:
        res = _fit_ray(task, cfg, out_dir, resume)
    return TrainResult(out_dir, res["step"], res["samples_per_s"], res["history"], res["resumed_from"],
                       [tuple(s) for s in res.get("skipped_checkpoints", [])])


def _ray_worker(config: dict) -> None:
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()

    def wrap(model: torch.nn.Module) -> torch.nn.Module:
        return ray.train.torch.prepare_model(model) if world > 1 else model

    res = _loop(config["task"], config["cfg"], config["out_dir"], config["resume"],
                lambda row: ray.train.report({k: v for k, v in row.items() if isinstance(v, (int, float))}),
                rank, world, wrap)
    if rank == 0:
        publish_bytes(Path(config["out_dir"]) / "result.json", json.dumps(res, sort_keys=True).encode())


def _fit_ray(task: Task, cfg: TrainConfig, out_dir: Path, resume: bool) -> dict:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    started = not ray.is_initialized()
    if started:
        ray.init(address=cfg.ray_address or "local", include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **({} if cfg.ray_address else {"num_cpus": max(cfg.workers, 2)}))
    try:
        trainer = TorchTrainer(
            _ray_worker, train_loop_config={"task": task, "cfg": cfg, "out_dir": str(out_dir), "resume": resume},
            torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
            scaling_config=ScalingConfig(num_workers=cfg.workers, use_gpu=cfg.use_gpu),
            run_config=RunConfig(name=f"{task.name}-{out_dir.name}", storage_path=str(out_dir / "ray")))
        trainer.fit()
    finally:
        if started:
            ray.shutdown()
    return json.loads((out_dir / "result.json").read_text())
