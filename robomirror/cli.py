"""Shared CLI pieces for the stage `__main__` modules."""

from __future__ import annotations

import argparse
import sys


def not_yet(stage: str, doc: str | None, argv: list[str] | None = None) -> int:
    """CLI of a stage that a later issue implements: `--help` works, running says so and exits 2."""
    ap = argparse.ArgumentParser(prog=f"python -m {stage}", description=doc)
    ap.parse_args(argv)
    print(f"{stage}: not implemented yet; this stage arrives with a later issue", file=sys.stderr)
    return 2
