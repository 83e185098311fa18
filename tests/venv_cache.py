"""A venv for a test that must run outside the project's own (the Jetson set, a pinned LeRobot, mjlab's
GPU path), built once under data/cache and keyed by the requirements file's hash and the Python version
(robomirror.venv_cache); a venv that cannot be built skips the test with pip's reason."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from robomirror.venv_cache import VenvError, build_cached_venv


def cached_venv(name: str, python: str, requirements: Path, installs: list[list[str]],
                after: Callable[[Path], None] | None = None) -> Path:
    """The venv's python; each entry of `installs` is one `pip install` argument list. Skips the test with
    pip's last line when an install fails (no registry reachable); a half-built venv is removed."""
    try:
        return build_cached_venv(name, python, requirements, installs, after)
    except VenvError as e:
        pytest.skip(str(e))
