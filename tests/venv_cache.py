"""A venv for a test that must run outside the project's own (the Jetson set, a pinned LeRobot), built
once under data/cache and keyed by the requirements file's hash and the Python version."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cached_venv(name: str, python: str, requirements: Path, installs: list[list[str]],
                after: Callable[[Path], None] | None = None) -> Path:
    """The venv's python; each entry of `installs` is one `pip install` argument list. Skips the test with
    pip's last line when an install fails (no registry reachable); a half-built venv is removed."""
    ver = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                         text=True, check=True).stdout.strip()
    key = hashlib.sha256(Path(requirements).read_bytes()).hexdigest()[:12]
    venv = ROOT / "data" / "cache" / f"{name}-py{ver}-{key}"
    py = venv / "bin" / "python"
    if (venv / ".installed").is_file():
        return py
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
    for args in installs:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                           capture_output=True, text=True, timeout=1500)
        if r.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"the {name} venv did not install on Python {ver} (no registry reachable?): "
                        f"{r.stderr.strip().splitlines()[-1:]}")
    if after is not None:
        after(venv)
    (venv / ".installed").touch()
    return py
