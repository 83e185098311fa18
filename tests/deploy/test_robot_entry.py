"""The robot side runs from requirements-jetson.txt alone: a venv holding only those packages (and what
pip adds for them), on this machine's Python 3.11 and, where pyenv has it, Python 3.10 (JetPack 6's),
runs `python -m deploy robot --selftest` from a checkout: load checks, ramp, policy, exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.venv_cache import cached_venv

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-jetson.txt"


def _pythons() -> list[str]:
    found = [sys.executable]
    for pattern in ("/root/.pyenv/versions/3.10.*/bin/python3.10", "/usr/bin/python3.10"):
        hits = sorted(Path("/").glob(pattern.lstrip("/")))
        if hits:
            found.append(str(hits[-1]))
            break
    return found


def _jetson_venv(python: str) -> Path:
    """A venv with requirements-jetson.txt only (wheels only), cached under data/cache."""
    return cached_venv("jetson-venv", python, REQUIREMENTS, [["--only-binary=:all:", "-r", str(REQUIREMENTS)]])


@pytest.mark.parametrize("python", _pythons(), ids=lambda p: "py" + Path(p).name.replace("python", ""))
def test_the_robot_entry_point_runs_from_the_jetson_requirements_alone(python, small_policy, tmp_path):
    py = _jetson_venv(python)
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    names = {line.split("==")[0].lower() for line in freeze.splitlines() if "==" in line}
    assert {"numpy", "onnxruntime", "lcm"} <= names and not names & {"torch", "mujoco", "duckdb", "ray", "onnx"}
    run = lambda *a: subprocess.run([str(py), "-m", "deploy", "robot", *a], cwd=ROOT, capture_output=True,  # noqa: E731
                                    text=True, timeout=120)
    out = run("--policy", str(small_policy), "--selftest", "--seconds", "2.5")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ran to the end" in out.stdout and "ramp->policy" in out.stdout
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    out = run("--policy", str(bad), "--selftest", "--seconds", "0.5")
    assert out.returncode == 2 and "not a loadable ONNX" in out.stderr and "Traceback" not in out.stderr
