"""The end-of-run summary table of the ingest job."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ingest.pipeline import IngestSummary
from robomirror.paths import DataLayout
from robomirror.report import add_failure_rows, print_outputs


def print_summary(s: IngestSummary, layout: DataLayout, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title="ingest summary", show_header=True, header_style="bold")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("source sequences", str(s.sources))
    t.add_row("  built / cached / failed", f"{s.built} / {s.cached} / {s.failed}")
    if s.kept_without_source:
        t.add_row("  kept, source not found (--prune drops)", str(s.kept_without_source))
    for found, n in sorted(s.layouts.items()):
        t.add_row(f"  layout {found}", str(n))
    for ds, r in sorted(s.per_dataset.items()):
        t.add_row(f"  {ds}: clips, shards (rebuilt)", f"{r.clips}, {r.shards} ({r.rebuilt})")
    t.add_row("clips written", str(s.clips))
    t.add_row("shards", f"{s.shards} ({s.shards_rebuilt} rebuilt, {s.shards - s.shards_rebuilt} verified)")
    t.add_row("shard bytes", f"{s.bytes / 1e6:.1f} MB")
    t.add_row("wall time", f"{s.seconds:.1f} s")
    t.add_row("clips/s", f"{s.clips_per_s:.2f}")
    t.add_row("peak worker RSS", f"{s.peak_rss_mb:.0f} MB")
    add_failure_rows(t, s.failures_by_reason)
    console.print(t)
    print_outputs(console, layout, "ingest", s.failed)
    console.print("query:   python -m catalog sql \"SELECT dataset, view, count(*) FROM clips GROUP BY ALL\"")
