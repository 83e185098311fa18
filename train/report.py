"""The end-of-run summary: the paper-style table (Real / ours / shuffled, beside the chance level), each
number with its 95 % interval, the verdict whether the three are separated, the evaluator's own
retrieval on clips it never trained on, and where everything is.

A table from fewer test clips than a pool of 32 is not printed as a result: its title says so and why,
and the chance row shows the chance level of the pool that was used instead."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from train.metrics import INTERVAL, POOL, Evaluation, chance_r_precision
from train.pipeline import TrainSummary

SHOWN = ("R@1", "R@2", "R@3", "MM-Dist", "FID", "Diversity")


def _cell(metric: str, mean: float, lo: float, hi: float) -> str:
    if metric.startswith("R@"):
        return f"{100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{mean:.2f} [{lo:.2f}, {hi:.2f}]" if lo == lo else f"{mean:.2f}"


def _r_line(e: Evaluation) -> str:
    r = " / ".join(_cell(k, e.row(k).mean, e.row(k).lo, e.row(k).hi) for k in ("R@1", "R@2", "R@3"))
    how = f"pools of {e.pool}" if e.measured else f"one pool of {e.pool}: not a measurement"
    return f"R@1/2/3 {r} % on {e.n_clips} clips ({how})"


def print_summary(s: TrainSummary, console: Console | None = None) -> None:
    console = console or Console(width=160)
    measured = bool(s.evals) and all(e.measured for e in s.evals.values())
    pool = s.batch_size or POOL
    if measured:
        title = (f"motion-latent reconstruction, test split {s.split_id} ({s.n_test} clips, R@k in pools of {pool}; "
                 f"run {s.run_id})")
    else:
        title = (f"NOT A RESULT: {s.n_test} test clips, fewer than a pool of {POOL}; the numbers below are not a "
                 f"measurement (test split {s.split_id}, run {s.run_id})")
    t = Table(title=title)
    t.add_column("method")
    for m in SHOWN:
        t.add_column(m + (" ↑" if m.startswith("R@") else " ↓" if m in ("MM-Dist", "FID") else "") + " [95% CI]",
                     justify="right")
    for method, rows in s.table.items():
        by = {r.name: r for r in rows}
        t.add_row(method + ("" if measured else " (not a measurement)"),
                  *[_cell(m, by[m].mean, by[m].lo, by[m].hi) for m in SHOWN])
    chance = chance_r_precision(pool)
    t.add_row(f"chance (random ranking, pool of {pool})", *[f"{100 * c:.1f}" for c in chance], "—", "—", "—")
    console.print(t)
    if not measured:
        reason = next((e.reason for e in s.evals.values() if e.reason), "")
        console.print(f"[bold]Not a result[/bold]: {reason}. Grow the test split to at least {POOL} clips with "
                      "video (a larger sample or --test-fraction) for a measurement.")
    console.print(f"Intervals: {INTERVAL} (per-query scores averaged over random pool draws). Real = ground-truth "
                  "motion latents (the ceiling; its FID is 0 by construction); shuffled = the DiT fed another clip's "
                  "video (the floor); chance = R@k of a random ranking, k / pool.")
    for v in s.verdicts:
        console.print(("  " if v.separated else "  [bold]") + v.text + ("" if v.separated else "[/bold]"))
    if s.verdicts and not measured:
        console.print("  (verdicts on a table that is not a measurement are not results either)")
    model = next((k for k in s.final_loss if k != "evaluator"), "dit")
    console.print(f"{model} {s.dit_id}: {s.steps} steps, {s.samples_per_s:.0f} training samples/s, final loss "
                  f"{s.final_loss.get(model, 0):.4f}; {s.n_train} train clips, {len(s.skipped)} without video tokens "
                  f"(ledger/train.parquet); store versions {s.versions}")
    _print_evaluator(s, console)
    console.print(f"checkpoints and TensorBoard: {s.run_dir} ({s.seconds:.0f} s); results in the store's "
                  "`evals` and `v2m` tables")


def _print_evaluator(s: TrainSummary, console: Console) -> None:
    st = s.evaluator_stop
    if st is None:
        console.print(f"evaluator {s.evaluator_id}: [bold]not early-stopped[/bold] ({s.n_val} validation clips "
                      f"with video; 2 needed), final train loss {s.final_loss.get('evaluator', 0):.4f}: it may have "
                      "memorised its training clips")
    else:
        curve = ", ".join(f"{v['step']}: {v['val_loss']:.3f}" for v in st.validations)
        why = "no better validation for the last validations" if st.stopped_at < st.max_steps else "max steps"
        console.print(f"evaluator {s.evaluator_id}: early-stopped on {s.n_val} validation clips (sequences it never "
                      f"trained on): kept step {st.best_step} (validation InfoNCE {st.best_val:.3f}, train "
                      f"{st.train_loss:.3f}); trained to {st.stopped_at} of at most {st.max_steps} ({why}); "
                      f"validation loss by step: {curve}")
    for side, e in s.evaluator_retrieval.items():
        seen = "trained on" if side == "train" else "never trained on"
        console.print(f"  evaluator retrieval on its {side} clips ({seen}): {_r_line(e)}")
    if s.evals:
        real = next(iter(s.evals.values()))
        console.print(f"  evaluator retrieval on the test clips (never trained on; the Real row): {_r_line(real)}")
