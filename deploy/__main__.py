"""`python -m deploy`: `run` (a video drives the simulated or a real G1 through the exported policy,
intent process included: the development machine) and `robot` (the runtime alone, as on the robot's
Jetson: requirements-jetson.txt only). Exit status: deploy.runtime.EXIT_* (0 ran to the end, 2
refused, 3 ended in damping, 4 the intent process died, 1/130/143 stopped after sending damping)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    ap.add_argument("--data-root", help="data root (default $ROBOMIRROR_DATA or ./data); `run` only")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="video -> intent process -> 50 Hz runtime -> G1")
    r.add_argument("--video", required=True, help="a video file or a stream URL (PyAV)")
    r.add_argument("--view", choices=["third_person", "egocentric"], default="third_person")
    r.add_argument("--policy", help="policy .onnx (default: the best under runs/policy: a policy-learn run, one that stands first, else the newest `make policy` plumbing run; the summary says which and why)")
    r.add_argument("--backend", choices=["sim", "lcm", "dds"], default="sim")
    r.add_argument("--seconds", type=float, help="policy time after the start-up ramp (default: video + 3 s)")
    r.add_argument("--dit-run", help="training run whose DiT makes the latents (default: newest on this store)")
    r.add_argument("--vlm", help="VLM directory the store was built with (default: the store's)")
    r.add_argument("--url", default="udpm://239.255.76.67:7667?ttl=0", help="LCM URL of the latent channel")
    r.add_argument("--dds-interface", default="lo")
    from deploy import robot

    robot.add_arguments(sub.add_parser("robot", help="the 50 Hz runtime alone, on the robot (Jetson)"))
    args = ap.parse_args(argv)
    if args.cmd == "robot":  # no data root, no store: nothing beyond requirements-jetson.txt
        return robot.main(args)

    from deploy.runtime import EXIT_REFUSED, DeployError
    from robomirror.errors import RoboMirrorError
    from robomirror.paths import DataLayout, resolve_data_root

    layout = DataLayout(resolve_data_root(args.data_root))
    try:
        from deploy.run import DeployRunConfig, print_report, run_deploy

        cfg = DeployRunConfig(video=args.video, view=args.view, policy=args.policy, backend=args.backend,
                              seconds=args.seconds, url=args.url, dit_run=args.dit_run, vlm=args.vlm,
                              dds_interface=args.dds_interface)
        report = run_deploy(layout, cfg)
        print_report(report)
        return report["exit_code"]
    except (RoboMirrorError, DeployError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
