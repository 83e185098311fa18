"""End-of-run summary of the retarget job."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from retarget.pipeline import RetargetSummary
from robomirror.paths import DataLayout
from robomirror.report import add_failure_rows, print_outputs


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
    add_failure_rows(t, s.failures_by_reason)
    console.print(t)
    print_outputs(console, layout, "retarget", s.failed_clips)
