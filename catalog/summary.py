"""`python -m catalog summary`: what a run produced and where it is, in one table (the end of `make demo`)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from robomirror.paths import DataLayout


def _newest(runs_dir: Path, name: str) -> tuple[Path, dict] | None:
    """The most recently written `<run>/<name>` under runs_dir and its parsed JSON, or None."""
    found = sorted(runs_dir.glob(f"*/{name}"), key=lambda p: p.stat().st_mtime)
    return (found[-1], json.loads(found[-1].read_text())) if found else None


def print_summary(layout: DataLayout, pages: list[Path], console: Console | None = None) -> None:
    from catalog.sql import query, store_models
    from latents.store import TABLES, Store
    from latents.video import vlm_label

    console = console or Console()
    t = Table(title="RoboMirror data engine: what this run produced", header_style="bold", show_lines=False)
    t.add_column("what")
    t.add_column("where / how many", overflow="fold")
    for stage in ("ingest", "retarget"):
        try:
            n = query(layout, f"SELECT count(*) FROM {'clips' if stage == 'ingest' else 'retarget'}").fetchone()[0]
        except Exception:  # noqa: BLE001 - the stage has not run
            n = 0
        t.add_row(f"{stage} shards", f"{layout.root / 'shards' / stage}  ({n} clips)")
    if layout.store_dir.is_dir():
        store = Store(layout.store_dir)
        counts = ", ".join(f"{name} {store.count(name)} rows (v{store.version(name)})" for name in TABLES)
        t.add_row("latent store (LanceDB)", f"{layout.store_dir}  ({counts})")
        vae, vlm, text = store_models(layout) or ("?", "?", "?")
        t.add_row("models", escape(f"motion {vae}; video {vlm_label(vlm)}; text {text}"))
    newest = _newest(layout.root / "runs" / "train", "run.json")
    if newest:
        path, meta = newest
        t.add_row("trained DiT (newest run)", escape(f"{path.parent}  (split {meta['split_id']}, preset "
                                                     f"{meta['config']['preset']}, {meta['flow']['objective']}; "
                                                     "table: SELECT * FROM store_evals)"))
    newest = _newest(layout.root / "runs" / "policy", "eval.json")
    if newest:
        path, ev = newest
        row = ev["table"].get("student_vae/sim2sim") or next(iter(ev["table"].values()))
        t.add_row("policy (newest run)", escape(f"{path.parent}  (ONNX {Path(ev['onnx']).name}; student "
                                                f"sim2sim Succ {row['succ']:.2f}, E_mpkpe {row['mpkpe_m']:.3f} m; "
                                                "table: SELECT * FROM store_policy_evals)"))
    newest = _newest(layout.root / "runs" / "deploy", "latency.json")
    if newest:
        path, d = newest
        t.add_row("deploy (newest run)", escape(f"{d.get('mp4') or path.parent}  (video -> first action "
                                                f"{d.get('video_to_first_action_s')} s)"))
    for p in pages:
        if p.is_file():
            t.add_row("report" if p.name == "index.html" else "nearest-neighbour page", str(p))
    t.add_row("SQL", "python -m catalog sql \"SELECT * FROM store_clips LIMIT 5\"  (tables: clips, retarget, "
                     "failures, store_clips, store_evals, store_splits, store_v2m, store_policy_evals, "
                     "store_policy_verdicts)")
    console.print(t)
