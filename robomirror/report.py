"""Shared pieces of the end-of-run summaries."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from robomirror.paths import DataLayout


def add_failure_rows(t: Table, by_reason: Counter) -> None:
    for reason, n in sorted(by_reason.items()):
        t.add_row(f"failed: {reason}", str(n), style="red")


def print_outputs(console: Console, layout: DataLayout, stage: str, n_failures: int) -> None:
    console.print(f"shards:  {layout.root / 'shards' / stage}")
    console.print(f"ledger:  {layout.ledger(stage)}  ({n_failures} failures)")
