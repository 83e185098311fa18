"""A venv that must live outside the project's own (the Jetson set, a pinned LeRobot, mjlab's GPU path),
built once under data/cache and keyed by the requirements file's hash and the Python version.

The one copy of this logic: tests wrap it (tests/venv_cache.py skips with pip's reason), commands use it
directly (`python -m train.mjlab_path`) and report the same reason as an error."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from robomirror.errors import RoboMirrorError

ROOT = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 1500


class VenvError(RoboMirrorError):
    """A cached venv could not be built (pip's own last line says why, e.g. no registry reachable)."""


def venv_dir(name: str, python: str, requirements: Path) -> tuple[Path, str]:
    """(the venv's folder, the Python's major.minor) for `name` built by `python` from `requirements`."""
    ver = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                         text=True, check=True).stdout.strip()
    key = hashlib.sha256(Path(requirements).read_bytes()).hexdigest()[:12]
    return ROOT / "data" / "cache" / f"{name}-py{ver}-{key}", ver


def build_cached_venv(name: str, python: str, requirements: Path, installs: list[list[str]],
                      after: Callable[[Path], None] | None = None, log: Callable[[str], None] | None = None) -> Path:
    """The venv's python; each entry of `installs` is one `pip install` argument list. Raises VenvError
    with pip's last line when an install fails; a half-built venv is removed. `log` hears each step
    (an install of torch takes minutes)."""
    venv, ver = venv_dir(name, python, requirements)
    py = venv / "bin" / "python"
    if (venv / ".installed").is_file():
        return py
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
    for args in installs:
        if log is not None:
            log(f"{name}: pip install {' '.join(args)} (once; cached in {venv})")
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                           capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        if r.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise VenvError(f"the {name} venv did not install on Python {ver} (no registry reachable?): "
                            f"{r.stderr.strip().splitlines()[-1:]}")
    if after is not None:
        after(venv)
    (venv / ".installed").touch()
    return py
