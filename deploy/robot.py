"""`python -m deploy robot`: the robot side alone, as it runs on the G1's Jetson.

Needs only requirements-jetson.txt (numpy, onnxruntime, lcm; the DDS extra for `--backend dds`):
no data root, no store, no intent stack. The policy ONNX and its metadata are the whole contract;
motion latents arrive over LCM from the intent process, wherever it runs. The exit status says how
the run ended (deploy.runtime.EXIT_*): 0 ran to the end, 2 refused at load, 3 ended in damping after
a latched fault, 1 / 130 / 143 stopped by an exception / Ctrl-C / SIGTERM after sending damping.

`--selftest` puts a stand-in robot (standing still in the default pose) and zero latents on the far
end of in-process LCM (memq): the whole loop runs, plumbing only, so a fresh Jetson install can be
checked before a robot is connected.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np

from deploy.lowcmd import N_SLOTS, LowCmd, LowState
from deploy.runtime import (
    EXIT_REFUSED,
    DeployError,
    LatentBox,
    LatentSample,
    OnnxPolicy,
    RealClock,
    Runtime,
    RuntimeConfig,
    realtime_priority,
    run_cycles,
)
from deploy.safety import SafetyConfig
from robomirror import g1_contract as g1

LATENT_URL = "udpm://239.255.76.67:7667?ttl=0"


class StandingRobot:
    """A stand-in robot for --selftest: upright, in the default pose, its tick advancing."""

    def __init__(self) -> None:
        self.tick, self.commands = 0, 0
        self.q = np.zeros(N_SLOTS)
        self.q[: len(g1.MOTOR_DEFAULT_POS_RAD)] = g1.MOTOR_DEFAULT_POS_RAD
        self.last: LowCmd | None = None

    def read_state(self) -> LowState:
        self.tick += 1
        return LowState(self.tick, self.q.copy(), np.zeros(N_SLOTS), np.array([1.0, 0, 0, 0]), np.zeros(3), 0)

    def send(self, cmd: LowCmd) -> None:
        self.commands, self.last = self.commands + 1, cmd


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--policy", required=True, help="the exported policy .onnx (make policy)")
    ap.add_argument("--backend", choices=["lcm", "dds"], default="lcm",
                    help="lcm: LowState/LowCmd over LCM (a bridge on the robot); dds: Unitree's DDS topics")
    ap.add_argument("--url", default="memq://", help="LCM URL of the low-state/command channels (--backend lcm)")
    ap.add_argument("--latent-url", default=LATENT_URL, help="LCM URL of the motion-latent channel")
    ap.add_argument("--dds-interface", default="eth0", help="network interface of the robot (--backend dds)")
    ap.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C / SIGTERM)")
    ap.add_argument("--wait-s", type=float, default=2.0, help="how long to wait for the first LowState")
    ap.add_argument("--fall-tilt-rad", type=float, default=SafetyConfig().fall_tilt_rad,
                    help="damp when the pelvis tilts more than this from upright (<= 0: off, for acrobatics)")
    ap.add_argument("--providers", default="CPUExecutionProvider",
                    help="onnxruntime providers, comma-separated (Jetson: TensorrtExecutionProvider,"
                         "CUDAExecutionProvider,CPUExecutionProvider)")
    ap.add_argument("--rt-priority", type=int, default=50,
                    help="SCHED_FIFO priority of the loop (needs root or CAP_SYS_NICE; else nice -10; 0: off)")
    ap.add_argument("--selftest", action="store_true", help="a stand-in robot and zero latents over memq (plumbing)")


def main(args: argparse.Namespace, log=print) -> int:
    import lcm

    from deploy.backends.lcm_backend import LcmBackend, LcmLatentSubscriber, LcmRobotPeer

    try:
        policy = OnnxPolicy(args.policy, providers=args.providers.split(","))
    except DeployError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    clock = RealClock()
    safety = SafetyConfig(fall_tilt_rad=args.fall_tilt_rad if args.fall_tilt_rad and args.fall_tilt_rad > 0 else None)
    box = LatentBox(policy.latent_dim, policy, stale_s=safety.latent_stale_s, future_s=safety.latent_future_s)
    peer = robot = None
    if args.selftest:
        lc = lcm.LCM("memq://")
        robot = StandingRobot()
        peer = LcmRobotPeer(robot, lc)
        backend = LcmBackend(lc, wait_s=args.wait_s)
        latent_lc = lc
    else:
        latent_lc = lcm.LCM(args.latent_url)
        if args.backend == "lcm":
            backend = LcmBackend(lcm.LCM(args.url), wait_s=args.wait_s)
        else:
            from deploy.backends.dds import DdsBackend

            try:
                backend = DdsBackend(args.dds_interface, wait_s=args.wait_s)
            except DeployError as e:
                print(f"error: {e}", file=sys.stderr)
                return EXIT_REFUSED
    sub = LcmLatentSubscriber(latent_lc, box, clock)
    if not args.selftest:
        sub.spin_in_thread()
    rt = Runtime(policy, backend, clock, box, RuntimeConfig(safety=replace(safety)))
    ids = (str(policy.meta.get("vae_id", "")), str(policy.meta.get("vlm_id", "")))

    def before(i: int) -> None:
        if peer is not None:
            box.put(LatentSample(np.zeros(policy.latent_dim, np.float32), clock.now(), *ids))
            peer.pump()

    cycles = None if args.seconds is None else int(round(args.seconds * rt.cfg.hz))
    log(f"robot: scheduling: {realtime_priority(args.rt_priority)}")
    log(f"robot: policy {args.policy} ({policy.latent_dim}-d latents), backend "
        f"{'selftest (stand-in robot, zero latents: plumbing)' if args.selftest else args.backend}, "
        f"{'until stopped' if cycles is None else f'{args.seconds} s'}")
    t0 = time.monotonic()
    try:
        code = run_cycles(rt, cycles, before, log=log)
    finally:
        sub.stop()
        backend.close()
    print_summary(rt, time.monotonic() - t0, code, log)
    return code


def print_summary(rt: Runtime, wall_s: float, code: int, log=print) -> None:
    modes = {}
    for r in rt.records:
        modes[r.mode] = modes.get(r.mode, 0) + 1
    late = np.array([r.late_ms for r in rt.records]) if rt.records else np.zeros(1)
    log(f"robot: {len(rt.records)} cycles in {wall_s:.1f} s; cycles per mode {modes}; wake-up lateness "
        f"p99 {np.percentile(late, 99):.2f} ms, overruns {rt.safety.overruns}, re-phased {rt.rephased}x")
    for t in rt.safety.transitions:
        log(f"  {t.t_s - rt.records[0].t_s if rt.records else 0:.2f}s {t.from_mode}->{t.to_mode}: {t.reason}")
    log(f"robot: shaping changed targets in {rt.clipped.total()} joint-cycles of {rt.clipped.cycles} cycles")
    outcome = {0: "ran to the end", 3: f"ended in DAMPING: {rt.safety.fault_reason}"}.get(
        code, f"stopped after sending damping: {rt.fatal}")
    log(f"robot: {outcome} (exit {code})")
