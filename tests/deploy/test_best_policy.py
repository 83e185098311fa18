"""deploy picks the best policy the project has and says why: a policy-learn run that stands, then any
policy-learn run, then the newest `make policy` plumbing run; the reason carries the run's own verdict."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploy.run import DeployError, best_policy
from robomirror.paths import DataLayout


def _run(root: Path, name: str, mtime: float, goals: dict | None = None) -> Path:
    d = root / "runs" / "policy" / name
    d.mkdir(parents=True)
    (d / "policy.onnx").write_bytes(b"onnx")
    if goals is not None:
        (d / "result.json").write_text(json.dumps({"goals": goals}))
    os.utime(d / "policy.onnx", (mtime, mtime))
    return d / "policy.onnx"


def test_order_learned_standing_then_learned_then_plumbing(tmp_path):
    layout = DataLayout(tmp_path)
    with pytest.raises(DeployError, match="make policy"):
        best_policy(layout)
    _run(tmp_path, "plumb-old", 100)
    newest_plumbing = _run(tmp_path, "plumb-new", 300)
    path, why = best_policy(layout)
    assert path == newest_plumbing and "plumbing" in why
    falls = _run(tmp_path, "learn-falls", 200, {"stand_student_succ_1": False, "walk_teacher_succ_gt_0": False})
    path, why = best_policy(layout)
    assert path == falls and "does NOT stand" in why and "0 of 2 goals" in why
    stands = _run(tmp_path, "learn-stands", 150, {"stand_student_succ_1": True, "walk_teacher_succ_gt_0": False})
    path, why = best_policy(layout)
    assert path == stands and "student stands" in why and "1 of 2 goals" in why
