"""Resume reads checkpoints defensively: a corrupt latest checkpoint (each file it holds truncated in
turn) is reported by path and reason and the run resumes from the newest valid one, still bit-identical
to an uninterrupted run; with none valid it refuses, naming each, and changes nothing."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch
from safetensors.torch import load_file

from robomirror.trainer import TrainConfig, TrainError, fit, latest_checkpoint, newest_valid_checkpoint
from tests.train.test_trainer import Regression

CFG = TrainConfig(steps=30, global_batch=8, ckpt_every=10, log_every=5, lr=1e-2)
FILES = ["model.safetensors", "optim.safetensors", "state.json"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 30-step run and a 20-step one (checkpoints 10 and 20) to corrupt copies of."""
    base = tmp_path_factory.mktemp("runs")
    fit(Regression(), CFG, base / "whole")
    fit(Regression(), TrainConfig(**{**CFG.__dict__, "steps": 20}), base / "part")
    return base


def _digests(path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize("name", FILES + ["latest", "state.json not JSON", "missing model"])
def test_a_corrupt_latest_falls_back_to_the_newest_valid(runs, tmp_path, capsys, name):
    out = tmp_path / "run"
    shutil.copytree(runs / "part", out)
    newest = out / "ckpt-00000020"
    if name == "latest":
        (out / "latest").write_bytes(b"\xff\xfe garbage")
    elif name == "state.json not JSON":
        (newest / "state.json").write_text("{not json")
    elif name == "missing model":
        (newest / "model.safetensors").unlink()
    else:
        _truncate(newest / name)
    good_before = _digests(out / "ckpt-00000010")
    res = fit(Regression(), CFG, out, resume=True)
    err = capsys.readouterr().err
    if name == "latest":  # the pointer is unreadable; ckpt-20 itself is whole, so it is the newest valid
        assert res.resumed_from == 20 and res.skipped_checkpoints == []
    else:
        bad = newest / ("model.safetensors" if name == "missing model" else name.split()[0])
        assert res.resumed_from == 10
        assert [p for p, _ in res.skipped_checkpoints] == [str(bad)]
        assert f"checkpoint {bad} is corrupt" in err and "resuming from" in err and str(out / "ckpt-00000010") in err
        reason = res.skipped_checkpoints[0][1]
        assert {"missing model": "missing", "state.json not JSON": "not valid JSON",
                "state.json": "not valid JSON"}.get(name, "unreadable safetensors") in reason
    # the older good checkpoint was only read; the resumed run is bit-identical to an uninterrupted one
    assert _digests(out / "ckpt-00000010") == good_before
    a = load_file(str(latest_checkpoint(runs / "whole") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(out) / "model.safetensors"))
    assert res.step == 30 and all(torch.equal(a[k], b[k]) for k in a)
    assert newest_valid_checkpoint(out, warn=False)[0] == out / "ckpt-00000030"


@pytest.mark.parametrize("name", FILES)
def test_no_valid_checkpoint_is_a_clear_refusal(runs, tmp_path, name):
    out = tmp_path / "run"
    shutil.copytree(runs / "part", out)
    for ckpt in ("ckpt-00000010", "ckpt-00000020"):
        _truncate(out / ckpt / name, keep=0.3)
    before = _digests(out)
    with pytest.raises(TrainError) as e:
        fit(Regression(), CFG, out, resume=True)
    msg = str(e.value)
    assert msg.startswith(f"no valid checkpoint to resume in {out}")
    assert str(out / "ckpt-00000020" / name) in msg and str(out / "ckpt-00000010" / name) in msg
    assert _digests(out) == before  # nothing written, nothing removed
    with pytest.raises(TrainError, match="already holds checkpoints"):  # nor overwritten by a fresh run
        fit(Regression(), CFG, out)
