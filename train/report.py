"""The end-of-run summary: the paper-style table (Real / ours / shuffled) and where everything is."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from train.pipeline import TrainSummary

SHOWN = ("R@1", "R@2", "R@3", "MM-Dist", "FID", "Diversity")


def print_summary(s: TrainSummary, console: Console | None = None) -> None:
    console = console or Console(width=140)
    t = Table(title=f"motion-latent reconstruction, test split {s.split_id} ({s.n_test} clips; run {s.run_id})")
    t.add_column("method")
    for m in SHOWN:
        t.add_column(m + (" ↑" if m.startswith("R@") else " ↓" if m in ("MM-Dist", "FID") else ""), justify="right")
    for method, rows in s.table.items():
        by = {r.name: r for r in rows}
        t.add_row(method, *[f"{100 * by[m].mean:.1f} ±{100 * by[m].ci95:.1f}" if m.startswith("R@")
                            else f"{by[m].mean:.2f} ±{by[m].ci95:.2f}" for m in SHOWN])
    console.print(t)
    note = (f"batches of {s.batch_size}" if s.batch_size == 32 else
            f"fewer than 32 test clips: every replication uses the whole test split ({s.batch_size}) as one batch")
    console.print(f"{note}; 95% CI over replications. Real = ground-truth motion latents (the ceiling); "
                  "shuffled = the DiT fed another clip's video (the floor). No gap between ours and shuffled "
                  "means the video did not inform the motion.")
    model = next((k for k in s.final_loss if k != "evaluator"), "dit")
    console.print(f"{model} {s.dit_id}: {s.steps} steps, {s.samples_per_s:.0f} training samples/s, final loss "
                  f"{s.final_loss.get(model, 0):.4f}; "
                  f"evaluator {s.evaluator_id}: final loss {s.final_loss.get('evaluator', 0):.4f}; "
                  f"{s.n_train} train clips, {len(s.skipped)} without video tokens (ledger/train.parquet); "
                  f"store versions {s.versions}")
    console.print(f"checkpoints and TensorBoard: {s.run_dir} ({s.seconds:.0f} s); results in the store's "
                  "`evals` and `v2m` tables")
