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
    r.add_argument("--evaluator-steps", type=int, default=400, help="at most; early stopping usually ends it sooner")
    r.add_argument("--evaluator-every", type=int, default=20, help="evaluator steps between validations")
    r.add_argument("--evaluator-patience", type=int, default=5, help="validations without a new best before stopping")
    r.add_argument("--val-fraction", type=float, default=0.2,
                   help="of the train split's sequences, held out to early-stop the evaluator")
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
    r.add_argument("--replications", type=int, default=20, help="random pools of 32 drawn per query (R-precision)")
    r.add_argument("--no-progress", action="store_true")
    p = sub.add_parser("policy", help="teacher (PPO) + student (DAgger) + sim2sim evaluation + ONNX on the store")
    p.add_argument("--where", default="stable", help="SQL condition over store_clips columns and `split`")
    p.add_argument("--latents", choices=["vae", "v2m"], default="vae",
                   help="the student's training latents: the VAE's (default) or the DiT's reconstructions (the paper)")
    p.add_argument("--max-clips", type=int, default=8, help="clips per split (0: all)")
    p.add_argument("--envs", type=int, default=16, help="MuJoCo worlds in the training process")
    p.add_argument("--teacher-iterations", type=int, default=40)
    p.add_argument("--experts", type=int, default=5, help="MoE experts (paper text: 5; its Table 8: 4)")
    p.add_argument("--actor-hidden", default="768,512,128")
    p.add_argument("--critic-hidden", default="512,256,128")
    p.add_argument("--student", choices=["diffusion", "mlp"], default="diffusion")
    p.add_argument("--student-width", type=int, default=512, help="AdaLN-MLP width (paper: 1792; 512 keeps DAgger to a minute on 2 cores)")
    p.add_argument("--prediction", choices=["x0", "eps"], default="x0", help="Table 14 ablation")
    p.add_argument("--ddim-steps", type=int, default=2, help="Table 12 ablation")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta (Table 13: 0 / 0.5)")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim")
    p.add_argument("--dagger-rounds", type=int, default=4)
    p.add_argument("--height-map", action="store_true",
                   help="observe the terrain (height_map_rel_root_m, 121) around the root; the robot runtime refuses such a policy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue this run's checkpoints")
    p.add_argument("--no-progress", action="store_true")
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
        if args.cmd == "policy":
            return _policy(layout, args)
        from train.pipeline import TrainRunConfig, run_train
        from train.report import print_summary

        executor = "ray" if args.workers > 1 else args.executor
        cfg = TrainRunConfig(preset=args.preset, dit_steps=args.dit_steps, evaluator_steps=args.evaluator_steps,
                             global_batch=args.batch, lr=args.lr, objective=args.objective, method=args.method,
                             inference_steps=args.inference_steps, seed=args.seed,
                             split=SplitConfig(args.split_seed, args.test_fraction), workers=args.workers,
                             executor=executor, ray_address=args.ray_address, eval_replications=args.replications,
                             evaluator_every=args.evaluator_every, evaluator_patience=args.evaluator_patience,
                             val_fraction=args.val_fraction)
        print_summary(run_train(layout, cfg, resume=args.resume, progress=not args.no_progress))
        return 0
    except RoboMirrorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _policy(layout: DataLayout, args) -> int:
    from train.dagger import DaggerConfig
    from train.policy import PolicyRunConfig, print_policy_summary, run_policy
    from train.student import StudentConfig
    from train.teacher import TeacherConfig

    dims = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    cfg = PolicyRunConfig(
        where=args.where, latents=args.latents, max_clips=args.max_clips or None, num_envs=args.envs,
        teacher=TeacherConfig(iterations=args.teacher_iterations, num_experts=args.experts,
                              actor_hidden=dims(args.actor_hidden), critic_hidden=dims(args.critic_hidden), seed=args.seed),
        student=StudentConfig(kind=args.student, width=args.student_width, prediction=args.prediction,
                              ddim_steps=args.ddim_steps, eta=args.eta, sampler=args.sampler, height_map=args.height_map),
        dagger=DaggerConfig(rounds=args.dagger_rounds, seed=args.seed))
    print_policy_summary(run_policy(layout, cfg, resume=args.resume, progress=not args.no_progress))
    return 0


if __name__ == "__main__":
    sys.exit(main())
