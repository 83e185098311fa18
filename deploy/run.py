"""`python -m deploy run`: a video drives the G1: intent process + 50 Hz robot runtime, locally.

Two processes, as a deployment splits them: the intent process (deploy/intent.py: video -> VLM ->
DiT -> latent, where the GPU is) publishes over LCM on the loopback; this process is the robot
runtime (the Jetson side). Order, as on a robot: the runtime starts and ramps the G1 to its default
pose (in the sim, hanging from its band), then the video starts; the runtime holds until the first
fresh latent, then the policy acts at 50 Hz. Outputs under runs/deploy/<id>/: run.mp4 (sim),
latency.json (loop period error, stage latencies) and transitions.json (every safety transition).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from deploy.runtime import (
    EXIT_INTENT_DIED,
    EXIT_OK,
    DeployError,
    LatentBox,
    OnnxPolicy,
    RealClock,
    Runtime,
    RuntimeConfig,
    run_cycles,
)
from robomirror.atomic import digest_of, json_bytes, publish_bytes
from robomirror.paths import DataLayout


@dataclass(frozen=True)
class DeployRunConfig:
    video: str
    view: str = "third_person"
    policy: str | None = None  # default: the newest runs/policy/*/policy.onnx
    backend: str = "sim"  # "sim" | "lcm" (the sim robot behind an LCM peer) | "dds"
    seconds: float | None = None  # default: the video's length + 3 s
    url: str = "udpm://239.255.76.67:7667?ttl=0"
    dit_run: str | None = None
    vlm: str | None = None
    window_s: float = 2.0
    refresh_s: float = 0.5
    dds_interface: str = "lo"


def newest_policy(layout: DataLayout) -> Path:
    return best_policy(layout)[0]


def best_policy(layout: DataLayout) -> tuple[Path, str]:
    """The policy the project would put on the robot, and why: a `policy-learn` run (it trained for a CPU
    budget; runs/policy/<id>/result.json) before the `make policy` plumbing run (minutes), a learn run that
    met its standing goals before one that did not, the newest within each. The reason names the run's
    own verdict, so a summary never presents plumbing as a tracker."""
    import json

    found = list(layout.root.glob("runs/policy/*/policy.onnx"))
    if not found:
        raise DeployError(f"no exported policy under {layout.root / 'runs' / 'policy'}: run `make policy` first")

    def verdict(p: Path) -> tuple[int, float, str]:
        try:
            goals = json.loads((p.parent / "result.json").read_bytes()).get("goals", {})
        except (OSError, ValueError):
            return 0, p.stat().st_mtime, f"`make policy` run {p.parent.name} (a plumbing run: minutes of training)"
        stands = bool(goals.get("stand_student_succ_1"))
        met = sum(bool(v) for v in goals.values())
        say = (f"policy-learn run {p.parent.name} (trained for its CPU budget; {met} of {len(goals)} goals met, "
               f"student {'stands' if stands else 'does NOT stand'} on the standing clip)")
        return 2 if stands else 1, p.stat().st_mtime, say

    best = max(found, key=lambda p: verdict(p)[:2])
    return best, verdict(best)[2]


def _intent_entry(root: str, cfg: dict, ready, go, out) -> None:
    from deploy.intent import IntentConfig, run_intent

    go_wait = go.wait
    try:
        rows = run_intent(DataLayout(Path(root)), cfg["video"], cfg["view"], cfg["url"],
                          IntentConfig(cfg["window_s"], cfg["refresh_s"]), cfg["vlm"], cfg["dit_run"],
                          ready=_Ready(ready, go_wait, out), log=lambda *a: None)
        out.put({"rows": rows})
    except Exception as e:  # noqa: BLE001 - reported to the parent, which says what failed
        out.put({"error": f"{type(e).__name__}: {e}"})
        ready.set()


class _Ready:
    """Set `ready` once the models are loaded, then wait for `go` (the runtime's ramp is done)."""

    def __init__(self, ready, go_wait, out) -> None:
        self.ready, self.go_wait, self.out = ready, go_wait, out

    def set(self) -> None:
        self.ready.set()
        self.go_wait()
        self.out.put({"video_start_monotonic": time.monotonic()})


def _video_seconds(path: str) -> float:
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        return float(c.duration or 0) / 1e6


def run_deploy(layout: DataLayout, cfg: DeployRunConfig, log=print) -> dict:
    import lcm

    from catalog.sql import store_models
    from deploy.backends.lcm_backend import LcmBackend, LcmLatentSubscriber, LcmRobotPeer

    if not Path(cfg.video).is_file() and "://" not in cfg.video:
        raise DeployError(f"--video {cfg.video}: no such file (or give a stream URL)")
    policy_path, why = (Path(cfg.policy), "given with --policy") if cfg.policy else best_policy(layout)
    policy = OnnxPolicy(policy_path)
    models = store_models(layout)
    if models is not None:
        policy.check_models(models[0], models[1])  # refuse a policy trained on other VAE / VLM latents
    run_id = digest_of([asdict(cfg), str(policy_path), time.time()])[:12]
    out_dir = layout.root / "runs" / "deploy" / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds = cfg.seconds or (_video_seconds(cfg.video) + 3.0)

    ctx = mp.get_context("spawn")
    ready, go, q = ctx.Event(), ctx.Event(), ctx.Queue()
    intent = ctx.Process(target=_intent_entry, args=(str(layout.root), asdict(cfg), ready, go, q), daemon=True)
    t_load = time.monotonic()
    intent.start()
    if not ready.wait(300):
        intent.terminate()
        raise DeployError("the intent process did not load its models within 300 s")
    load_s = time.monotonic() - t_load

    clock = RealClock()
    box = LatentBox(policy.latent_dim, policy)
    lc = lcm.LCM(cfg.url)
    sub = LcmLatentSubscriber(lc, box, clock)
    sub.spin_in_thread()
    peer = sim = None
    if cfg.backend in ("sim", "lcm"):
        from deploy.backends.sim import SimBackend

        sim = SimBackend(clock, video=out_dir / "run.mp4")
        if cfg.backend == "sim":
            backend = sim
        else:  # the sim robot on the far side of LCM (in-process memq here; udpm between machines)
            robot_lc = lcm.LCM("memq://")
            peer = LcmRobotPeer(sim, robot_lc)
            backend = LcmBackend(robot_lc)
            peer.pump()
    elif cfg.backend == "dds":
        from deploy.backends.dds import DdsBackend

        backend = DdsBackend(cfg.dds_interface)
    else:
        raise DeployError(f"--backend {cfg.backend!r}: expected sim, lcm or dds")
    rt = Runtime(policy, backend, clock, box, RuntimeConfig())
    if sim is not None:
        rt.on_policy.append(sim.release_band)
    ramp_cycles = int(round(rt.safety.cfg.ramp_s * rt.cfg.hz))
    total = ramp_cycles + int(round(seconds * rt.cfg.hz))
    watch = IntentWatch(intent, q)

    def before(i: int) -> None:
        if peer is not None:
            peer.pump()
        if i == ramp_cycles:
            go.set()
        watch.poll(clock.now() - (rt.records[0].t_s if rt.records else clock.now()))

    try:
        code = run_cycles(rt, total, before, log=log)
    finally:
        sub.stop()
        backend.close()
        if sim is not None and sim is not backend:
            sim.close()
    intent.join(timeout=30)
    watch.poll(None)
    if intent.is_alive():
        intent.terminate()
    if watch.error is not None and code == EXIT_OK:
        code = EXIT_INTENT_DIED
    rows = watch.rows or []
    report = latency_report(rt, box, watch.video_start, rows, load_s, seconds)
    report |= {"run_id": run_id, "policy": str(policy_path), "policy_chosen": why, "backend": cfg.backend, "video": cfg.video,
               "mp4": str(out_dir / "run.mp4") if sim is not None else None, "rejected_latents": box.rejected[:5],
               "latents_rejected": box.n_rejected, "exit_code": code, "intent_error": watch.error,
               "outcome": outcome(rt, code, watch.error)}
    publish_bytes(out_dir / "latency.json", json_bytes(report))
    publish_bytes(out_dir / "transitions.json", json_bytes([asdict(t) for t in rt.safety.transitions]))
    return report


class IntentWatch:
    """The intent process's messages and its death: a process that exits without its result (killed,
    crashed) is an error of the run, never a silent hold."""

    def __init__(self, proc, queue) -> None:
        self.proc, self.queue = proc, queue
        self.rows: list[dict] | None = None
        self.video_start: float | None = None
        self.error: str | None = None

    def poll(self, run_t_s: float | None) -> None:
        import queue as _queue

        while True:
            try:
                m = self.queue.get_nowait()
            except (_queue.Empty, OSError, EOFError, ValueError):
                break
            if "error" in m:
                self.error = self.error or f"the intent process failed: {m['error']}"
            self.rows = m.get("rows", self.rows)
            self.video_start = m.get("video_start_monotonic", self.video_start)
        if self.error is None and self.rows is None and not self.proc.is_alive() and self.proc.exitcode is not None:
            when = "" if run_t_s is None else f" at {run_t_s:.1f} s into the run"
            self.error = (f"the intent process died{when} (exit code {self.proc.exitcode}) without finishing the "
                          "video; the runtime held the default pose once its latent went stale")


def outcome(rt: Runtime, code: int, intent_error: str | None) -> str:
    """One line for the summary: did the robot stand to the end, or how did it stop."""
    if rt.fatal is not None:
        return f"stopped after sending damping: {rt.fatal}"
    if rt.safety.fault_reason is not None:
        return f"ended in DAMPING: {rt.safety.fault_reason}"
    if intent_error is not None:
        return intent_error
    return "stood to the end (no fault)" if code == EXIT_OK else f"exit {code}"


def latency_report(rt: Runtime, box: LatentBox, video_start: float | None, rows: list[dict], load_s: float,
                   seconds: float) -> dict:
    periods = np.array([r.period_ms for r in rt.records if r.period_ms is not None])
    err = periods - 1e3 / rt.cfg.hz
    compute = np.array([r.compute_ms for r in rt.records])
    first = rows[0] if rows else {}
    latent_rx = None
    for r in rt.records:
        if r.latent_age_s is not None:
            latent_rx = r.t_s - r.latent_age_s
            break
    rel = lambda t: None if t is None or video_start is None else round(t - video_start, 3)  # noqa: E731
    return {
        "loop_hz": rt.cfg.hz, "cycles": len(rt.records), "seconds": seconds,
        "period_error_ms": {"p50": float(np.percentile(np.abs(err), 50)), "p99": float(np.percentile(np.abs(err), 99)),
                            "max": float(np.abs(err).max())} if len(err) else {},
        "period_error_hist_ms": np.histogram(err, bins=np.linspace(-5, 5, 21))[0].tolist() if len(err) else [],
        "compute_ms": {"p50": float(np.percentile(compute, 50)), "p99": float(np.percentile(compute, 99))},
        "intent_model_load_s": round(load_s, 2),
        "first_latent_stages_ms": {k: round(first[k], 1) for k in ("window_ms", "vlm_ms", "dit_ms") if k in first},
        "video_to_first_latent_s": rel(latent_rx), "video_to_first_action_s": rel(rt.first_policy_s),
        "latents_published": len(rows), "latents_received": box.received,
        "transitions": [f"{t.t_s - rt.records[0].t_s:.2f}s {t.from_mode}->{t.to_mode}: {t.reason}"
                        for t in rt.safety.transitions],
        "shaping_changed": rt.clipped.as_json(),
    }


def print_report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"deploy run {r['run_id']} ({r['backend']} backend, {r['cycles']} cycles at {r['loop_hz']:.0f} Hz)")
    t.add_column("measure")
    t.add_column("value")
    pe = r["period_error_ms"]
    if pe:
        t.add_row("loop period error p50 / p99 / max", f"{pe['p50']:.2f} / {pe['p99']:.2f} / {pe['max']:.2f} ms")
    t.add_row("cycle compute p50 / p99", f"{r['compute_ms']['p50']:.2f} / {r['compute_ms']['p99']:.2f} ms")
    t.add_row("intent models load (before the video)", f"{r['intent_model_load_s']} s")
    for k, v in r["first_latent_stages_ms"].items():
        t.add_row({"window_ms": "first window: video arriving + decode", "vlm_ms": "first latent: VLM",
                   "dit_ms": "first latent: DiT (2 steps)"}[k], f"{v} ms")
    t.add_row("video -> first latent at the robot", f"{r['video_to_first_latent_s']} s")
    t.add_row("video -> first policy action", f"{r['video_to_first_action_s']} s")
    t.add_row("latents published / received", f"{r['latents_published']} / {r['latents_received']}")
    t.add_row("latents rejected", str(r.get("latents_rejected", 0)))
    sh = r["shaping_changed"]
    t.add_row("shaping changed a target (joint-cycles)",
              ", ".join(f"{k} {sum(v.values())}" for k, v in sh.items() if k != "cycles") + f" of {sh['cycles']} cycles")
    t.add_row("policy", f"{r['policy']}: {r.get('policy_chosen', '')}")
    t.add_row("G1 stayed up", "yes, to the end" if r["exit_code"] == 0 else "NO")
    t.add_row("outcome", f"{r['outcome']} (exit {r['exit_code']})")
    Console().print(t)
    for line in r["transitions"]:
        print("  " + line)
    if r.get("mp4"):
        print(f"video: {r['mp4']}")
