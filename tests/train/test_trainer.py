"""The shared trainer: exact resume after a kill, 2 Ray workers = 1 worker at the same global batch,
checkpoints without pickle, clear refusals."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

from robomirror.errors import ConfigError
from robomirror.trainer import TrainConfig, TrainError, fit, latest_checkpoint, stream_indices


@dataclass
class Regression:
    """A small task with noise drawn per step: y = W x + noise, fitted by an MLP."""

    n: int = 24
    name: str = "regression"

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def dataset(self):
        g = torch.Generator().manual_seed(123)
        x = torch.randn(self.n, 6, generator=g)
        w = torch.randn(6, 3, generator=g)
        return [(x[i], x[i] @ w) for i in range(self.n)]

    def collate(self, items):
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def loss(self, model, batch, gen, rows, global_batch):
        x, y = batch
        noise = 0.1 * torch.randn(global_batch, 3, generator=gen)[rows]
        return ((model(x) - y - noise) ** 2).mean(), {}


@dataclass
class SlowRegression(Regression):
    """The same task, 5 ms a step: a killer polling the disk always catches it mid-run."""

    def loss(self, model, batch, gen, rows, global_batch):
        import time

        time.sleep(0.005)
        return super().loss(model, batch, gen, rows, global_batch)


def _weights(out):
    return load_file(str(latest_checkpoint(out) / "model.safetensors"))


def test_stream_covers_each_epoch_once():
    idx = stream_indices(10, 0, 0, 30)
    assert all(sorted(idx[e * 10:(e + 1) * 10]) == list(range(10)) for e in range(3))
    assert list(stream_indices(10, 0, 7, 9)) == list(idx[7:16])  # any window of the same stream


def test_kill_then_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(steps=30, global_batch=8, ckpt_every=10, log_every=5, lr=1e-2)
    fit(Regression(), cfg, tmp_path / "whole")

    class Killed(BaseException):
        pass

    def kill_at_25(row):
        if row["step"] == 25:
            raise Killed  # the process dies after the step-20 checkpoint; only the disk survives

    with pytest.raises(Killed):
        fit(Regression(), cfg, tmp_path / "killed", on_report=kill_at_25)
    assert latest_checkpoint(tmp_path / "killed").name == "ckpt-00000020"
    res = fit(Regression(), cfg, tmp_path / "killed", resume=True)
    assert res.resumed_from == 20 and res.step == 30
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    whole = json.loads((latest_checkpoint(tmp_path / "whole") / "state.json").read_text())["history"]
    resumed = json.loads((latest_checkpoint(tmp_path / "killed") / "state.json").read_text())["history"]
    assert [h["loss"] for h in whole] == [h["loss"] for h in resumed]
    assert whole[-1]["loss"] < whole[0]["loss"]  # it learned something


def test_refusals(tmp_path):
    with pytest.raises(ConfigError, match="multiple of workers"):
        TrainConfig(global_batch=7, workers=2, executor="ray")
    with pytest.raises(ConfigError, match="executor 'local' runs one worker"):
        TrainConfig(workers=2)
    fit(Regression(), TrainConfig(steps=2, ckpt_every=1), tmp_path / "x")
    with pytest.raises(TrainError, match="already holds checkpoints"):
        fit(Regression(), TrainConfig(steps=2), tmp_path / "x")
    with pytest.raises(TrainError, match="seed"):
        fit(Regression(), TrainConfig(steps=4, seed=1), tmp_path / "x", resume=True)


def test_two_ray_workers_equal_one_at_the_same_global_batch(tmp_path):
    """The DiT's own loss (flow noise and τ drawn per step for the global batch) on store-shaped
    tensors: 2 DDP workers end on the weights of 1 worker, within 1e-4 (float summation order)."""
    from train.bench import SyntheticDiTTask

    task = SyntheticDiTTask(n=24)
    cfg = dict(steps=8, global_batch=8, ckpt_every=8, log_every=4, executor="ray")
    fit(task, TrainConfig(workers=1, **cfg), tmp_path / "one")
    fit(task, TrainConfig(workers=2, **cfg), tmp_path / "two")
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    moved = fit(task, TrainConfig(steps=8, global_batch=8, ckpt_every=8, log_every=4), tmp_path / "local")
    c = _weights(tmp_path / "local")
    assert max(float((a[k] - c[k]).abs().max()) for k in a) < 1e-5  # the same loop in-process
    assert moved.history[-1]["loss"] != moved.history[0]["loss"]


def test_sigkill_mid_training_then_resume_gives_the_same_weights(tmp_path):
    """A real SIGKILL of a training process between checkpoints; resuming in another process ends on
    the weights of an uninterrupted run, bit for bit."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    cfg = TrainConfig(steps=400, global_batch=8, ckpt_every=50, log_every=50, lr=1e-2)
    fit(Regression(), cfg, tmp_path / "whole")
    script = ("import sys; from robomirror.trainer import TrainConfig, fit; from tests.train.test_trainer import "
              "SlowRegression; fit(SlowRegression(), TrainConfig(steps=400, global_batch=8, ckpt_every=50, log_every=50, "
              "lr=1e-2), sys.argv[1], resume=len(sys.argv) > 2)")
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], cwd=REPO)
    deadline = time.time() + 120
    def latest_step() -> int:  # `latest` is published just after the folder: wait for it, not the folder
        ckpt = latest_checkpoint(out)
        return int(ckpt.name.split("-")[1]) if ckpt is not None else 0

    while time.time() < deadline and proc.poll() is None and latest_step() < 100:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = int(latest_checkpoint(out).name.split("-")[1])
    assert 100 <= step < 400
    assert subprocess.run([sys.executable, "-c", script, str(out), "resume"], cwd=REPO, timeout=300).returncode == 0
    a, b = _weights(tmp_path / "whole"), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
