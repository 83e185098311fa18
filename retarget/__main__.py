"""`python -m retarget`: human motion from the ingest shards -> Unitree G1 motions, plus interop and rendering."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from robomirror.errors import RoboMirrorError
from robomirror.paths import ENV_DATA_ROOT, DataLayout, resolve_data_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m retarget", description=__doc__)
    ap.add_argument("--data-root", help=f"data root (default ${ENV_DATA_ROOT} or ./data)")
    ap.add_argument("--robot", default="g1_23dof", choices=["g1_23dof", "g1_29dof"])
    ap.add_argument("--robot-xml", help="a G1 MJCF to use instead of the copy in the mjlab wheel")
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="retarget every ingest shard into retarget shards")
    r.add_argument("--executor", choices=["ray", "serial"], default="ray")
    r.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"))
    r.add_argument("--num-cpus", type=int, default=None)
    r.add_argument("--iterations", type=int, default=2, help="pink IK steps per frame")
    r.add_argument("--no-contact-lock", action="store_true")
    r.add_argument("--self-collision", action="store_true",
                   help="keep the arm capsules off the legs, pelvis, torso and other arm (fewer self-collision "
                        "frames, ~0.4x IK speed: make bench)")
    r.add_argument("--body-models", help="real smplx/ and smpl/ .npz model files: fit betas to the G1 (PHC-style)")
    r.add_argument("--stab-eps", type=float, default=0.1, help="CoM-CoP distance of a stable frame [m]")
    r.add_argument("--stab-max-run", type=int, default=100, help="unstable frames in a row that fail a clip")
    r.add_argument("--shard-mb", type=float, default=32.0)
    r.add_argument("--on-error", choices=["ledger", "raise"], default="ledger")
    r.add_argument("--no-progress", action="store_true")

    v = sub.add_parser("render", help="mp4 of a clip: G1 | human skeleton | source video")
    v.add_argument("--clip", help="clip id (default: the first retargeted clip)")
    v.add_argument("--out", help="output mp4 (default data/renders/<clip>.mp4)")

    i = sub.add_parser("import", help="convert a PBHC/PHC or GMR pickle, or a BeyondMimic npz, to BeyondMimic npz")
    i.add_argument("file")
    i.add_argument("--format", choices=["pbhc", "gmr", "beyondmimic"], required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--fps", type=float, default=None, help="resample to this rate")
    i.add_argument("--ground", action="store_true",
                   help="shift the motion so the floor it stands on is z = 0 (files keep their own offset otherwise)")
    i.add_argument("--stab-eps", type=float, default=0.1, help="CoM-CoP distance of a stable frame [m]")

    e = sub.add_parser("export", help="export a retargeted clip for BeyondMimic (Isaac order), mjlab (MuJoCo order) "
                                      "or as a GMR pickle; --robot g1_23dof writes the wrists locked")
    e.add_argument("--clip", required=True)
    e.add_argument("--format", choices=["beyondmimic", "mjlab", "gmr"], default="beyondmimic")
    e.add_argument("--fps", type=float, default=50.0, help="output rate (50 Hz for trackers)")
    e.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    layout = DataLayout(resolve_data_root(args.data_root))
    try:
        if args.cmd == "run":
            from retarget.config import RetargetConfig
            from retarget.pipeline import run_retarget
            from retarget.report import print_summary

            cfg = RetargetConfig(robot=args.robot, robot_xml=args.robot_xml, iterations_per_frame=args.iterations,
                                 body_models_dir=args.body_models,
                                 contact_lock=not args.no_contact_lock, self_collision=args.self_collision,
                                 stab_eps_m=args.stab_eps,
                                 stab_max_unstable_run=args.stab_max_run, on_error=args.on_error)
            if not (layout.root / "shards" / "ingest").is_dir():
                print(f"error: no ingest shards under {layout.root}; run `make shards` first", file=sys.stderr)
                return 2
            s = run_retarget(layout, cfg, args.executor, args.ray_address, args.num_cpus, not args.no_progress,
                             int(args.shard_mb * 1e6))
            print_summary(s, layout)
            return 0
        if args.cmd == "render":
            from retarget.render import render_clip

            out = render_clip(layout, args.clip, Path(args.out) if args.out else None, args.robot_xml)
            print(f"rendered: {out}")
            return 0
        if args.cmd == "import":
            from retarget.interop import floor_offset_m, grounded, import_file, robot_for_motion, write_beyondmimic
            from retarget.stability import StabilityConfig, assess

            motion = import_file(Path(args.file), args.format)
            robot = robot_for_motion(motion, args.robot_xml)
            floor = floor_offset_m(motion, robot)
            if args.ground:
                motion, dz = grounded(motion, robot)
                print(f"grounded: shifted {dz * 100:+.1f} cm (the file's floor was at z = {floor * 100:+.1f} cm)")
            else:
                print(f"floor at z = {floor * 100:+.1f} cm (kept; --ground puts it at 0)")
            qpos = robot.qpos(motion.root_pos_w, motion.root_quat_wxyz, motion.joint_pos)
            v = assess(robot, qpos, StabilityConfig(eps_m=args.stab_eps))
            print(f"stability (CoM-CoP, eps {args.stab_eps} m): {'stable' if v.passed else 'UNSTABLE'} ({v.reason}); "
                  f"unstable frames {v.unstable_fraction:.0%}, longest run {v.longest_unstable_run}, "
                  f"CoM-CoP mean {v.dd_mean_m * 100:.1f} cm")
            write_beyondmimic(Path(args.out), motion, robot, args.fps)
            print(f"imported {motion.n_frames} frames at {motion.fps:g} Hz -> {args.out}")
            return 0
        if args.cmd == "export":
            from retarget.interop import export_clip

            export_clip(layout, args.clip, args.format, Path(args.out), args.fps, args.robot, args.robot_xml)
            print(f"exported {args.clip} -> {args.out}")
            return 0
    except RoboMirrorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
