"""Early stopping on a validation loss, around the one trainer (`robomirror.trainer.fit`), unchanged.

Training runs in segments of `every` steps, each a `fit` to the segment's end that resumes from the
previous segment's checkpoint. The trainer resumes bit-identically (data cursor = global step, draws
seeded by (seed, step), Adam state saved), so segments train exactly the weights one uninterrupted run
would. After each segment the checkpoint is scored on the validation clips; training stops when
`patience` validations in a row have not beaten the best one, or at `max_steps`. The model kept is
the best validation step's checkpoint (every segment's checkpoint stays on disk).

The validations are written to `<out>/early_stopping.json` after each one (atomic), so a run killed at
any point resumes to the same history and the same choice: a checkpoint not yet scored is scored on
resume (the score is a deterministic function of its weights).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from robomirror.atomic import publish_bytes
from robomirror.errors import ConfigError
from robomirror.trainer import CKPT_PREFIX, TrainConfig, TrainError, fit, latest_checkpoint, load_checkpoint

STATE = "early_stopping.json"


@dataclass(frozen=True)
class EarlyStopConfig:
    every: int = 20  # steps between validations (and checkpoints)
    patience: int = 5  # validations without a new best before stopping

    def __post_init__(self) -> None:
        if self.every < 1 or self.patience < 1:
            raise ConfigError(f"every and patience must be >= 1, got {self.every}, {self.patience}")


@dataclass
class EarlyStopResult:
    best_step: int
    best_val: float
    stopped_at: int  # the last step trained
    max_steps: int
    validations: list[dict]  # {"step", "val_loss"} in order
    train_loss: float  # the training loss logged nearest before best_step
    samples_per_s: float

    @property
    def best_checkpoint_name(self) -> str:
        return f"{CKPT_PREFIX}{self.best_step:08d}"


def fit_early_stopping(task, cfg: TrainConfig, out: Path, val_loss: Callable[[torch.nn.Module, int], float],
                       stop: EarlyStopConfig = EarlyStopConfig(), resume: bool = False,
                       on_report: Callable[[dict], None] | None = None) -> EarlyStopResult:
    """Train `task` for at most `cfg.steps`, validating every `stop.every` steps; returns the choice.

    `val_loss(model, step)` scores a model in eval mode (lower is better). A finished run (stopped) is
    returned as is; an unfinished one needs `resume`."""
    out = Path(out)
    state = _read_state(out)
    ckpt = latest_checkpoint(out)
    if ckpt is not None and not state.get("stopped") and not resume:
        raise TrainError(f"{out} holds an unfinished early-stopped run (step {_step(ckpt)} of at most {cfg.steps}); "
                         "pass --resume")
    if state.get("max_steps", cfg.steps) != cfg.steps or state.get("stop", asdict(stop)) != asdict(stop):
        raise TrainError(f"{out} was trained with max {state['max_steps']} steps and {state['stop']}; resuming "
                         f"needs the same, got {cfg.steps} and {asdict(stop)}")
    vals: list[dict] = state.get("validations", [])
    step = _step(ckpt) if ckpt is not None else 0
    history, samples_per_s = list(_history(ckpt)), state.get("samples_per_s", 0.0)
    while not state.get("stopped"):
        if step > 0 and (not vals or vals[-1]["step"] < step):
            vals.append({"step": step, "val_loss": _score(task, out / f"{CKPT_PREFIX}{step:08d}", step, val_loss)})
        best = min(vals, key=lambda v: v["val_loss"]) if vals else None
        since = sum(v["step"] > best["step"] for v in vals) if best else 0
        done = step >= cfg.steps or since >= stop.patience
        state = {"max_steps": cfg.steps, "stop": asdict(stop), "validations": vals, "stopped": done,
                 "best_step": best["step"] if best else 0, "samples_per_s": samples_per_s}
        publish_bytes(out / STATE, json.dumps(state, indent=1, sort_keys=True).encode())
        if done:
            break
        nxt = min((step // stop.every + 1) * stop.every, cfg.steps)
        res = fit(task, replace(cfg, steps=nxt, ckpt_every=stop.every), out, resume=step > 0, on_report=on_report)
        history, samples_per_s, step = res.history, res.samples_per_s, nxt
    best_step = state["best_step"]
    if not history:
        history = _history(out / f"{CKPT_PREFIX}{best_step:08d}")
    before = [h for h in history if h["step"] <= best_step] or history
    return EarlyStopResult(best_step, next(v["val_loss"] for v in vals if v["step"] == best_step), step if vals else 0,
                           cfg.steps, vals, before[-1]["loss"] if before else float("nan"), state["samples_per_s"])


def _score(task, ckpt: Path, step: int, val_loss: Callable[[torch.nn.Module, int], float]) -> float:
    model = task.build_model()
    load_checkpoint(ckpt, model)
    model.eval()
    with torch.no_grad():
        return float(val_loss(model, step))


def _read_state(out: Path) -> dict:
    p = out / STATE
    return json.loads(p.read_text()) if p.is_file() else {}


def _step(ckpt: Path) -> int:
    return int(json.loads((ckpt / "state.json").read_text())["step"])


def _history(ckpt: Path | None) -> list[dict]:
    if ckpt is None or not (ckpt / "state.json").is_file():
        return []
    return json.loads((ckpt / "state.json").read_text()).get("history", [])
