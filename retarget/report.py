"""End-of-run summary of the retarget job."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from retarget.pipeline import RetargetSummary
from robomirror.paths import DataLayout


def print_summary(s: RetargetSummary, layout: DataLayout, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title="retarget summary (G1)", header_style="bold")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("ingest shards", f"{s.shards_in} ({s.built} built, {s.cached} cached)")
    t.add_row("clips retargeted", str(s.clips))
    t.add_row("stability pass rate", f"{s.passed}/{s.clips}" + (f" ({100 * s.passed / s.clips:.0f}%)" if s.clips else ""))
    t.add_row("median MPKPE-aligned", f"{100 * s.mpkpe_median_m:.1f} cm")
    t.add_row("median foot skate", f"{s.skate_median_cm_s:.1f} cm/s")
    t.add_row("median penetration", f"{s.penetration_median_cm:.2f} cm")
    t.add_row("IK + post frames/s", f"{s.frames_per_s:.0f}" if s.frames else "(all cached)")
    t.add_row("wall time", f"{s.seconds:.1f} s")
    for reason, n in sorted(s.failures_by_reason.items()):
        t.add_row(f"failed: {reason}", str(n), style="red")
    console.print(t)
    console.print(f"shards:  {layout.root / 'shards' / 'retarget'}")
    console.print(f"ledger:  {layout.ledger('retarget')}  ({s.failed_clips} failures)")
