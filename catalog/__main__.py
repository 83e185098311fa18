"""`python -m catalog sql "SELECT ..."`: read-only SQL over shard manifests and failure ledgers."""

from __future__ import annotations

import argparse
import sys

from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout, resolve_data_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m catalog", description=__doc__)
    ap.add_argument("--data-root")
    sub = ap.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("sql", help="run one read-only SELECT (tables: clips, retarget, failures)")
    q.add_argument("query")
    q.add_argument("--format", choices=["table", "csv", "json", "parquet"], default="table")
    q.add_argument("--out", help="output file (required for parquet); never inside the data root, and not an "
                                 "existing file unless --force")
    q.add_argument("--force", action="store_true", help="replace an existing --out file (outside the data root)")
    q.add_argument("--max-rows", type=int, default=40)
    n = sub.add_parser("nearest", help="nearest clips in the store by --clip, --text or --video")
    n.add_argument("--clip", help="a clip_id in the store")
    n.add_argument("--text", help="a sentence (with --space text)")
    n.add_argument("--video", help="a video file (with --space video), embedded by the store's VLM")
    n.add_argument("--view", choices=["third_person", "egocentric"], default="third_person",
                   help="which prompt embeds --video")
    n.add_argument("--vlm", help="the local Qwen3-VL directory the store was built with (default $ROBOMIRROR_VLM "
                                 "or the tiny offline model)")
    n.add_argument("--space", choices=["motion", "video", "text"], default="motion")
    n.add_argument("--dit-run", default=None, help="with --video and --space motion: the training run (id or "
                   "folder) whose DiT maps the video latent to a motion latent (default: the newest fitting one)")
    n.add_argument("--k", type=int, default=5)
    n.add_argument("--where", help="a filter on store columns, e.g. \"dataset = 'nymeria' AND stable\"")
    n.add_argument("--html", help="also write a page with the videos, G1 renders, texts and distances here")
    rp = sub.add_parser("report", help="an HTML report with plots of the corpus, retargeting and latents")
    rp.add_argument("--out", help="output HTML (default data/report/index.html)")
    sm = sub.add_parser("summary", help="what a run produced: shards, store, models, report and pages")
    sm.add_argument("pages", nargs="*", help="HTML pages to list (default: data/report/*.html)")
    ex = sub.add_parser("export", help="the retargeted clips as a LeRobotDataset v3.0 folder (catalog/export_lerobot.py)")
    ex.add_argument("out", help="the dataset folder to create (must not exist)")
    ex.add_argument("--format", choices=["lerobot"], default="lerobot")
    ex.add_argument("--storage", choices=["parquet", "lance"], default="parquet",
                    help="lance is refused: the pinned lerobot 0.4.4 has no Lance storage")
    ex.add_argument("--limit", type=int, default=None, help="export at most this many clips")
    args = ap.parse_args(argv)

    if args.cmd == "export":
        from pathlib import Path

        from catalog.export_lerobot import export_lerobot

        try:
            info = export_lerobot(DataLayout(resolve_data_root(args.data_root)), Path(args.out), args.storage,
                                  args.limit)
        except RoboMirrorError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"exported {info['total_episodes']} episodes, {info['total_frames']} frames at {info['fps']} fps "
              f"-> {args.out} (LeRobotDataset {info['codebase_version']})")
        return 0

    if args.cmd == "summary":
        from pathlib import Path

        from catalog.summary import print_summary

        layout = DataLayout(resolve_data_root(args.data_root))
        pages = [Path(p) for p in args.pages] or sorted((layout.root / "report").glob("*.html"))
        print_summary(layout, pages)
        return 0

    if args.cmd == "report":
        from pathlib import Path

        from catalog.report import build_report

        out = build_report(DataLayout(resolve_data_root(args.data_root)), Path(args.out) if args.out else None)
        print(f"report: {out}")
        return 0
    if args.cmd == "nearest":
        from catalog.nearest import Query, describe, nearest

        layout = DataLayout(resolve_data_root(args.data_root))
        try:
            hits = nearest(layout, args.clip, args.text, args.space, args.k, args.where, args.video, args.view,
                           args.vlm, args.dit_run)
        except RoboMirrorError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for i, h in enumerate(hits, 1):
            verdict = "stable" if h.stable else "unstable" if h.stable is not None else "?"
            print(f"{i:2d}. {h.clip_id}  d={max(h.distance, 0.0) + 0.0:.4f}  [{h.dataset}, {h.view}, {verdict}]  {h.text[:80]}")
        if args.html:
            from pathlib import Path

            from catalog.nearest_page import write_nearest_page

            kind, value = next((k, v) for k, v in (("clip", args.clip), ("text", args.text), ("video", args.video)) if v)
            q = Query(kind, value, args.space, args.view if kind == "video" else None)
            page = write_nearest_page(layout, q, hits, Path(args.html), describe(layout, value) if kind == "clip" else None,
                                      progress=True)
            print(f"page: {page}")
        return 0

    from catalog.sql import check_out_path, query, write_out

    layout = DataLayout(resolve_data_root(args.data_root))
    if args.format == "parquet" and not args.out:
        print("error: --format parquet needs --out FILE", file=sys.stderr)
        return 2
    if args.format == "table" and args.out:
        print("error: --out writes --format csv, json or parquet; the table format is for the terminal", file=sys.stderr)
        return 2
    try:
        out = check_out_path(layout, args.out, args.force) if args.out else None  # before the query runs
        rel = query(layout, args.query)
        if rel is None:
            return 0
        df = rel.df()  # execution errors surface here (e.g. a refused read_text): same clear message
    except RoboMirrorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # duckdb errors: show them plainly, not as a traceback
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.format == "table":
        import pandas as pd

        with pd.option_context("display.max_rows", args.max_rows, "display.width", 160,
                               "display.max_colwidth", 60):
            print(df.to_string(max_rows=args.max_rows, index=False))
        print(f"({len(df)} rows)")
        return 0
    text = df.to_csv(index=False) if args.format == "csv" else \
        df.to_json(orient="records", lines=True) if args.format == "json" else None
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        write_out(out, text.encode() if text is not None else (lambda f: df.to_parquet(f, index=False)), args.force)
    except RoboMirrorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write --out {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {len(df)} rows to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
