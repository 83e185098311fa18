"""`python -m train`: `split` writes the store's split by sequence; `run` trains the evaluator and the
DiT on it, reconstructs the test split and prints the paper-style table (Real / ours / shuffled)."""

from __future__ import annotations

import argparse
import sys

from robomirror.errors import RoboMirrorError
from robomirror.paths import ENV_DATA_ROOT, DataLayout, resolve_data_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    ap.add_argument("--data-root", help=f"data root (default ${ENV_DATA_ROOT} or ./data)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("split", help="write the 8:2 split by sequence into the store")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--test-fraction", type=float, default=0.2)
    r = sub.add_parser("run", help="train evaluator + DiT, evaluate on the test split")
    r.add_argument("--preset", choices=["tiny", "paper"], default="tiny", help="DiT size (paper: 12 x 1024, 8 heads)")
    r.add_argument("--objective", choices=["velocity", "x0", "eps"], default="velocity",
                   help="flow objective (Table 15 ablations: x0, eps)")
    r.add_argument("--method", choices=["dit", "align"], default="dit",
                   help="dit: flow-matching reconstruction; align: the InfoNCE adapter baseline (Table 4)")
    r.add_argument("--dit-steps", type=int, default=300, help="steps of the DiT (or of the align adapter)")
    r.add_argument("--evaluator-steps", type=int, default=200)
    r.add_argument("--batch", type=int, default=8, help="global batch (all workers)")
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--inference-steps", type=int, default=2, help="Euler steps at sampling (paper: 2)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--split-seed", type=int, default=0)
    r.add_argument("--test-fraction", type=float, default=0.2)
    r.add_argument("--workers", type=int, default=1, help="Ray Train workers (DDP; gloo on CPU)")
    r.add_argument("--executor", choices=["local", "ray"], default="local")
    r.add_argument("--ray-address", default=None)
    r.add_argument("--resume", action="store_true", help="continue this run's checkpoints")
    r.add_argument("--replications", type=int, default=20)
    r.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    layout = DataLayout(resolve_data_root(args.data_root))
    try:
        from train.data import SplitConfig

        if args.cmd == "split":
            from robomirror.writer_lock import writer_lock
            from train.data import ensure_split

            with writer_lock(layout.root, "train split"):
                s = ensure_split(layout.store_dir, SplitConfig(args.seed, args.test_fraction))
            print(f"split {s.split_id}: {len(s.clips('train'))} train / {len(s.clips('test'))} test clips")
            return 0
        from train.pipeline import TrainRunConfig, run_train
        from train.report import print_summary

        executor = "ray" if args.workers > 1 else args.executor
        cfg = TrainRunConfig(preset=args.preset, dit_steps=args.dit_steps, evaluator_steps=args.evaluator_steps,
                             global_batch=args.batch, lr=args.lr, objective=args.objective, method=args.method,
                             inference_steps=args.inference_steps, seed=args.seed,
                             split=SplitConfig(args.split_seed, args.test_fraction), workers=args.workers,
                             executor=executor, ray_address=args.ray_address, eval_replications=args.replications)
        print_summary(run_train(layout, cfg, resume=args.resume, progress=not args.no_progress))
        return 0
    except RoboMirrorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
