"""Early stopping around the one trainer: it keeps the best validation step, stops after `patience`
validations without a new best, and a run killed between validations resumes to the same choice and
bit-identical weights (segments train exactly what one uninterrupted run trains)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

from robomirror.trainer import TrainConfig, TrainError, fit
from train.early_stop import EarlyStopConfig, fit_early_stopping

CURVE = {10: 5.0, 20: 3.0, 30: 2.0, 40: 1.5, 50: 1.7, 60: 1.6, 70: 1.55, 80: 0.1, 90: 9.0, 100: 9.0}


@dataclass
class Regression:
    name: str = "regression"

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def dataset(self):
        g = torch.Generator().manual_seed(123)
        x, w = torch.randn(24, 6, generator=g), torch.randn(6, 3, generator=g)
        return [(x[i], x[i] @ w) for i in range(24)]

    def collate(self, items):
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def loss(self, model, batch, gen, rows, global_batch):
        x, y = batch
        return ((model(x) - y - 0.1 * torch.randn(global_batch, 3, generator=gen)[rows]) ** 2).mean(), {}


def scripted(model, step):  # the validation curve by step: its minimum before patience runs out is 40
    return CURVE[step]


CFG = TrainConfig(steps=100, global_batch=4, log_every=5)
STOP = EarlyStopConfig(every=10, patience=3)


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_it_keeps_the_best_validation_step_and_stops_after_patience(tmp_path):
    res = fit_early_stopping(Regression(), CFG, tmp_path, scripted, STOP)
    assert res.best_step == 40 and res.best_val == 1.5
    assert res.stopped_at == 70  # 50, 60, 70 did not beat 40: the 0.1 at 80 is never seen
    assert [v["step"] for v in res.validations] == [10, 20, 30, 40, 50, 60, 70]
    assert not (tmp_path / "ckpt-00000080").exists() and (tmp_path / res.best_checkpoint_name).is_dir()
    assert res.train_loss == pytest.approx(next(h["loss"] for h in reversed(_history(tmp_path, 70)) if h["step"] <= 40))
    again = fit_early_stopping(Regression(), CFG, tmp_path, scripted, STOP)  # finished: returned as is
    assert (again.best_step, again.stopped_at, again.validations) == (40, 70, res.validations)
    straight = fit(Regression(), TrainConfig(steps=40, global_batch=4, log_every=5, ckpt_every=40), tmp_path / "one")
    a, b = _weights(tmp_path / "ckpt-00000040"), _weights(straight.out_dir / "ckpt-00000040")
    assert all(torch.equal(a[k], b[k]) for k in a)  # segments == one uninterrupted run, bit for bit


def test_a_run_killed_between_validations_resumes_to_the_same_choice_and_weights(tmp_path):
    whole = fit_early_stopping(Regression(), CFG, tmp_path / "whole", scripted, STOP)

    def killed_at_50(model, step):
        if step == 50:
            raise KeyboardInterrupt  # checkpoint 50 written, not yet validated
        return CURVE[step]

    with pytest.raises(KeyboardInterrupt):
        fit_early_stopping(Regression(), CFG, tmp_path / "cut", killed_at_50, STOP)
    with pytest.raises(TrainError, match="--resume"):
        fit_early_stopping(Regression(), CFG, tmp_path / "cut", scripted, STOP)
    with pytest.raises(TrainError, match="resuming needs the same"):
        fit_early_stopping(Regression(), TrainConfig(steps=200, global_batch=4, log_every=5), tmp_path / "cut",
                           scripted, STOP, resume=True)
    cut = fit_early_stopping(Regression(), CFG, tmp_path / "cut", scripted, STOP, resume=True)
    assert (cut.best_step, cut.stopped_at, cut.validations) == (whole.best_step, whole.stopped_at, whole.validations)
    for step in (40, 70):
        a = _weights(tmp_path / "whole" / f"ckpt-{step:08d}")
        b = _weights(tmp_path / "cut" / f"ckpt-{step:08d}")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_without_a_new_best_it_runs_to_max_steps(tmp_path):
    res = fit_early_stopping(Regression(), TrainConfig(steps=35, global_batch=4, log_every=5), tmp_path,
                             lambda m, s: 10.0 - s, STOP)
    assert res.stopped_at == 35 and res.best_step == 35 and [v["step"] for v in res.validations] == [10, 20, 30, 35]


def _history(out, step):
    import json

    return json.loads((out / f"ckpt-{step:08d}" / "state.json").read_text())["history"]
