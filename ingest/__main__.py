"""`python -m ingest`: build the sample corpus, or ingest Motion-X / Nymeria into shards."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ingest.sample import DEMO_MOTIONX_SHORT, DEMO_TEST_FRACTION
from robomirror.errors import RoboMirrorError
from robomirror.paths import ENV_DATA_ROOT, DataLayout, resolve_data_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    ap.add_argument("--data-root", help=f"data root (default ${ENV_DATA_ROOT} or ./data)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("sample", help="write the synthetic, format-true sample corpus")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--motionx", type=int, default=12, help="number of Motion-X sequences")
    s.add_argument("--nymeria", type=int, default=3, help="number of Nymeria sequences with the head video")
    s.add_argument("--nymeria-no-video", type=int, default=1,
                   help="number of Nymeria sequences downloaded without the head video (motion-only clips with text)")
    s.add_argument("--g1-csv", type=int, default=2, help="number of Unitree LAFAN1 G1 CSV takes (G1 motions)")
    s.add_argument("--no-bones-seed", action="store_true", help="leave out the BONES-SEED tree (G1 motions + texts)")
    s.add_argument("--motionx-short", type=int, default=DEMO_MOTIONX_SHORT,
                   help="number of short (one clip) Motion-X sequences with video: the evaluation's test clips "
                        f"(default {DEMO_MOTIONX_SHORT}: >= 64 test clips with video at `train run --test-fraction "
                        f"{DEMO_TEST_FRACTION}`)")
    s.add_argument("--no-scenes", action="store_true",
                   help="leave out the scene sequences (a staircase, a bench, a slope in holosoma's layout)")

    c = sub.add_parser("convert-body-model", help="official SMPL/SMPL-X .pkl -> .npz, through the restricted "
                                                  "unpickler (chumpy/scipy objects become arrays; nothing executes)")
    c.add_argument("pkl", help="e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl or SMPLX_NEUTRAL.pkl")
    c.add_argument("--out", required=True, help="the .npz to write, e.g. models/smpl/SMPL_NEUTRAL.npz")

    r = sub.add_parser("run", help="ingest sources into WebDataset shards")
    r.add_argument("--motionx", help="Motion-X root (v1 and/or Motion-X++ layout)")
    r.add_argument("--nymeria", help="Nymeria root holding sequence folders")
    r.add_argument("--g1-csv", help="Unitree LAFAN1 G1 retargeting root (g1/*.csv): G1 motions, their own keypoints")
    r.add_argument("--bones-seed", help="BONES-SEED root (g1/csv/<date>/*.csv + metadata/): G1 motions with texts")
    r.add_argument("--lerobot", help="LeRobotDataset v3.0 root of G1 joint trajectories (meta/info.json names them)")
    r.add_argument("--videomimic", help="VideoMimic real2sim results (folders with gravity_calibrated_megahunter.h5 "
                                        "+ background_mesh.obj): SMPL motion with the mesh of the place; needs h5py")
    # with neither, the built-in sample corpus under the data root is ingested
    r.add_argument("--only", choices=["motionx", "nymeria", "g1_csv", "bones_seed", "lerobot", "holosoma_climb"], action="append", help="restrict to a dataset")
    r.add_argument("--executor", choices=["ray", "serial"], default="ray")
    r.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"), help="join this Ray cluster")
    r.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    r.add_argument("--body-models", help="folder with real smplx/SMPLX_NEUTRAL.npz and smpl/SMPL_NEUTRAL.npz")
    r.add_argument("--clip-frames", type=int, default=150)
    r.add_argument("--stride-frames", type=int, default=150)
    r.add_argument("--min-frames", type=int, default=60)
    r.add_argument("--video-size", type=int, default=128)
    r.add_argument("--shard-mb", type=float, default=32.0, help="target shard size [MB]")
    r.add_argument("--nymeria-body", choices=["smpl", "xsens"], default="smpl")
    r.add_argument("--nymeria-up-axis", choices=["y", "z"], default="y",
                   help="up axis of NymeriaPlus SMPL (y, as the official smpl_provider.py); a check warns")
    r.add_argument("--partial-video", choices=["motion_only", "drop"], default="motion_only",
                   help="clips outside a head recording that covers part of the body: motion-only (default) or dropped")
    r.add_argument("--on-error", choices=["ledger", "raise"], default="ledger")
    r.add_argument("--prune", action="store_true",
                   help="the user's ask to retract: remove published clips whose source is no longer found, and "
                        "republish sequences missing part of their source from what is on disk (without it, both "
                        "keep the published generation: the first is kept from staging, the second stops the run)")
    r.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    layout = DataLayout(resolve_data_root(args.data_root))
    try:
        if args.cmd == "sample":
            from ingest.sample.corpus import SampleConfig, build_sample

            out = build_sample(layout.sample_dir, SampleConfig(seed=args.seed, n_motionx=args.motionx,
                                                               n_nymeria=args.nymeria,
                                                               n_nymeria_no_video=args.nymeria_no_video,
                                                               n_g1_csv=args.g1_csv, bones_seed=not args.no_bones_seed,
                                                               n_motionx_short=args.motionx_short,
                                                               scenes=not args.no_scenes))
            print("sample corpus (synthetic, format-true):", ", ".join(f"{k}: {v}" for k, v in out.items()))
            return 0
        if args.cmd == "convert-body-model":
            from ingest.body_model_convert import convert_body_model

            shapes = convert_body_model(Path(args.pkl), Path(args.out))
            print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
            return 0
        from ingest.config import IngestConfig
        from ingest.pipeline import run_ingest
        from ingest.report import print_summary

        cfg = IngestConfig(clip_frames=args.clip_frames, stride_frames=args.stride_frames,
                           min_frames=args.min_frames, video_size=args.video_size,
                           shard_target_bytes=int(args.shard_mb * 1e6), nymeria_body_source=args.nymeria_body,
                           nymeria_up_axis=args.nymeria_up_axis, body_models_dir=args.body_models,
                           on_error=args.on_error, partial_video=args.partial_video)
        given = {k: Path(v) for k, v in (("motionx", args.motionx), ("nymeria", args.nymeria),
                                                    ("g1_csv", args.g1_csv), ("bones_seed", args.bones_seed),
                                                    ("lerobot", args.lerobot), ("videomimic", args.videomimic)) if v}
        # a root given on the command line means "these sources": the sample only when none is given
        sources = given or {k: layout.sample_source(k) for k in ("motionx", "nymeria")}
        if not given:  # the sample's G1 corpora, where it has them (a sample written before issue 23 has not)
            sources.update({k: layout.sample_source(k) for k in ("g1_csv", "bones_seed", "holosoma_climb")
                            if layout.sample_source(k).is_dir()})
        if args.only:
            sources = {k: v for k, v in sources.items() if k in args.only}
        missing = [f"{k}: {v}" for k, v in sources.items() if not v.is_dir()]
        if missing:
            print(f"error: source folders not found: {'; '.join(missing)} (run `make sample` or pass --motionx/--nymeria)",
                  file=sys.stderr)
            return 2
        summary = run_ingest(layout, sources, cfg, args.executor, args.ray_address, args.num_cpus,
                             progress=not args.no_progress, prune=args.prune)
        print_summary(summary, layout)
        return 0
    except RoboMirrorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
