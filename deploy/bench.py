"""`make bench` for deploy: the 50 Hz loop's timing, each model's latency, and video -> first action.

- the loop: Runtime + sim backend on RealClock for `--seconds`, the student on one thread and a fresh
  latent every cycle: period error p50/p99/max and its histogram (runs/deploy/bench/loop.json, plotted
  in the report); the baseline is the ideal 20.000 ms period;
- latencies on one CPU thread: the student (DDIM-2, the newest `make policy` export), and the student
  width table: width (256 .. 1792, the paper's) against p50/p99 latency (wall and the thread's CPU
  time) and the action's error against torch (action units and rad), for torch, the float32 export
  (batch 1, pre-optimised), its dynamic int8 and its 4-bit block quantisation (random weights with the
  AdaLN modulation drawn, so every block acts), each row beside the load and a fixed baseline measured
  right after it (in runs/deploy/bench/student.json; `--student-only` runs just this table, best
  pinned: OMP_NUM_THREADS=1 taskset -c 1 python -m deploy.bench --student-only; the trained student's exports
  in closed loop: `--quantized-closed-loop`, i.e. deploy.quantized_check); the DiT sampler
  (2 Euler steps; the trained tiny one and the paper preset, random weights),
  the VLM forward on a 2 s window (the store's tiny random Qwen3-VL stand-in: plumbing, not Qwen3-VL's cost);
- `python -m deploy run` on a sample clip: video -> first action by stage (paper: 1.84 s; a
  pose-estimate -> retarget -> track pipeline 9.22 s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from deploy.runtime import (
    LatentBox,
    LatentSample,
    OnnxPolicy,
    RealClock,
    Runtime,
    RuntimeConfig,
    default_priority,
    realtime_priority,
)
from robomirror.atomic import json_bytes, publish_bytes
from robomirror.paths import DataLayout, resolve_data_root
from robomirror.timing import latency_ms as _ms
from robomirror.timing import latency_stats, torch_threads


def _spin(seconds: float) -> None:
    t = time.monotonic() + seconds
    x = 0
    while time.monotonic() < t:
        x += 1


def loop_timing(policy: Path, seconds: float, load_procs: int = 0, rt_priority: int | None = None) -> dict:
    """The runtime + sim on RealClock with a fresh latent every cycle, optionally beside `load_procs`
    busy processes. Fall detection is off (timing is measured, a fall would latch damping and make the
    remaining cycles cheaper); every other fault rule is on and counted."""
    import multiprocessing as mp
    from dataclasses import replace

    from deploy.backends.sim import SimBackend
    from deploy.safety import SafetyConfig

    clock = RealClock()
    pol = OnnxPolicy(policy)
    ids = (str(pol.meta.get("vae_id", "")), str(pol.meta.get("vlm_id", "")))
    box = LatentBox(pol.latent_dim, pol)
    sim = SimBackend(clock)
    cfg = RuntimeConfig(safety=replace(SafetyConfig(), fall_tilt_rad=None, fall_pelvis_height_m=None))
    rt = Runtime(pol, sim, clock, box, cfg)
    rt.on_policy.append(sim.release_band)
    ctx = mp.get_context("spawn")
    load = [ctx.Process(target=_spin, args=(seconds + 30.0,), daemon=True) for _ in range(load_procs)]
    for p in load:
        p.start()
    time.sleep(1.0 if load else 0.0)  # let the load processes start spinning
    scheduling = realtime_priority(rt_priority)
    try:
        for _ in range(int(seconds * 50)):
            box.put(LatentSample(np.zeros(pol.latent_dim, np.float32), clock.now(), *ids))
            rt.cycle()
    finally:
        default_priority()
        for p in load:
            p.terminate()
    periods = np.array([r.period_ms for r in rt.records[1:]])
    err = periods - 20.0
    compute = np.array([r.compute_ms for r in rt.records])
    late = np.array([r.late_ms for r in rt.records])
    return {"cycles": len(rt.records), "load_processes": load_procs, "scheduling": scheduling,
            "period_error_ms": {"p50": float(np.percentile(np.abs(err), 50)),
                                "p99": float(np.percentile(np.abs(err), 99)), "max": float(np.abs(err).max())},
            "late_wakeup_ms": {"p50": float(np.percentile(late, 50)), "p99": float(np.percentile(late, 99)),
                               "max": float(late.max())},
            "hist_edges_ms": np.linspace(-5, 5, 21).tolist(), "hist": np.histogram(err, np.linspace(-5, 5, 21))[0].tolist(),
            "compute_ms": {"p50": float(np.percentile(compute, 50)), "p99": float(np.percentile(compute, 99))},
            "overruns": rt.safety.overruns, "rephased": rt.rephased, "fault": rt.safety.fault_reason,
            "shaping_changed": rt.clipped.as_json()}


def policy_latency(policy: Path) -> tuple[float, float]:
    pol = OnnxPolicy(policy)
    obs = np.zeros((1, 256 + 75 * 26), np.float32)
    return _ms(lambda: pol.act(obs, np.zeros((1, 23))))


def paper_width_policy(d: Path) -> Path:
    from train.export import export_student
    from train.student import StudentConfig, build_student

    return export_student(build_student(StudentConfig(width=1792)), d / "paper.onnx", {})


def weight_stream_baseline(mb: float = 298.0, n: int = 100) -> dict:
    """The fixed references the student table is read against, measured beside each row (the machine is
    shared: a figure alone says little): one 1792 x 1792 float32 matrix-vector product (12.8 MB of weights,
    cache-resident after the first call) and a stream of `mb` MB of float32 weights through numpy's
    matrix-vector products (1792 x 1792 blocks, more than any cache: the 1792 student's float32 weight
    traffic per DDIM-2 call is 298 MB); p50/p99 [ms], the stream as GB/s too."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(1, 1792)).astype(np.float32)
    mats = [rng.normal(size=(1792, 1792)).astype(np.float32) for _ in range(max(1, round(mb / 12.845)))]
    g50, g99 = _ms(lambda: v @ mats[0].T, n)
    s50, s99 = _ms(lambda: [v @ m.T for m in mats], max(10, n // 5), warmup=2)
    return {"gemv_1792_p50_ms": g50, "gemv_1792_p99_ms": g99, "stream_mb": len(mats) * 12.845,
            "stream_p50_ms": s50, "stream_p99_ms": s99, "stream_gb_s": len(mats) * 12.845 / s50,
            "loadavg_1min": os.getloadavg()[0]}


def _drawn_student(width: int):
    """A student of `width` with random weights and the AdaLN modulation drawn (the trained student's is
    not zero; the zero init would make every block an identity)."""
    import torch

    from train.student import StudentConfig, build_student

    torch.manual_seed(0)
    st = build_student(StudentConfig(width=width)).eval()
    with torch.no_grad():
        for b in st.blocks:
            torch.nn.init.normal_(b.mod.weight, std=0.5 / width ** 0.5)
            torch.nn.init.normal_(b.mod.bias, std=0.1)
    return st


@torch_threads(1)
def student_width_table(d: Path, widths: tuple[int, ...] = (256, 512, 1024, 1792), n: int = 1000,
                        stream_mb: float = 298.0) -> list[dict]:
    """Width -> p50/p99 [ms] of DDIM-2 on the calling thread, torch and onnxruntime (train.export.session_options:
    ORT_ENABLE_ALL, one sequential thread, shapes fixed at batch 1, the pre-optimised `.opt.onnx`), float32,
    dynamic int8 and 4-bit block weights, each with its action error against torch (`train.export.action_error`,
    64 random observations, action units and rad) and the load average and fixed baselines
    (`weight_stream_baseline`) measured right after it."""
    import onnxruntime as ort
    import torch

    from train.export import action_error, export_student, optimized_path, quantize_int4, quantize_int8, session_options

    rows = []
    for w in widths:
        st = _drawn_student(w)
        obs = np.random.default_rng(0).normal(size=(1, st.cfg.obs_dim)).astype(np.float32)
        noise = np.random.default_rng(1).normal(size=(1, 23)).astype(np.float32)
        feed = {"obs": obs, "noise": noise}
        with torch.no_grad():
            lat = latency_stats(lambda s=st, o=torch.from_numpy(obs), z=torch.from_numpy(noise): s(o, z), max(50, n // 5))
        rows.append({"width": w, "runtime": "torch", **lat, "mb": None, "error": None,
                     "loadavg_1min": os.getloadavg()[0], "baseline": weight_stream_baseline(stream_mb)})
        fp32 = export_student(st, d / f"s{w}.onnx", {})
        for kind, path in (("onnxruntime float32", optimized_path(fp32)),
                           ("onnxruntime int8 (dynamic, per channel)", quantize_int8(fp32, d / f"s{w}.int8.onnx")),
                           ("onnxruntime int4 (blocks of 32)", quantize_int4(fp32, d / f"s{w}.int4.onnx"))):
            sess = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
            lat = latency_stats(lambda s=sess, f=feed: s.run(None, f), n)
            rows.append({"width": w, "runtime": kind, **lat, "mb": path.stat().st_size / 1e6,
                         "error": action_error(st, path, n=64), "loadavg_1min": os.getloadavg()[0],
                         "baseline": weight_stream_baseline(stream_mb)})
    return rows


def student_table(rows: list[dict]) -> Table:
    t = Table(title="student DDIM-2 on one CPU thread: both steps in one graph, the conditioning folded out, "
                    "ORT_ENABLE_ALL, batch 1 fixed; error = |action - torch| over 64 random observations "
                    "(goals: <= 5 ms p99 at 1792, <= 1 ms p99 at 512); CPU = the thread's CPU time per call (wall minus "
                    "waiting for the core); baselines measured right after each row")
    for c in ("width", "runtime", "p50 / p99 ms", "CPU p50 / p99 ms", "max / mean error (action)", "max / mean error (rad)", "MB",
              "load 1 min", "gemv 1792 p50 ms", "298 MB stream p50 ms", "p50 / stream"):
        t.add_column(c)
    for r in rows:
        e, b = r["error"], r["baseline"]
        t.add_row(str(r["width"]), r["runtime"], f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}",
                  f"{r['cpu_p50_ms']:.2f} / {r['cpu_p99_ms']:.2f}",
                  f"{e['max_action']:.1e} / {e['mean_action']:.1e}" if e else "reference",
                  f"{e['max_rad']:.1e} / {e['mean_rad']:.1e}" if e else "", f"{r['mb']:.1f}" if r["mb"] else "",
                  f"{r['loadavg_1min']:.1f}", f"{b['gemv_1792_p50_ms']:.2f}", f"{b['stream_p50_ms']:.1f}",
                  f"{r['p50_ms'] / b['stream_p50_ms']:.2f}")
    return t


def write_student_json(out: Path, rows: list[dict]) -> Path:
    import platform

    out.mkdir(parents=True, exist_ok=True)
    aff = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    publish_bytes(out / "student.json", json_bytes({
        "format_version": 2, "rows": rows, "loadavg": os.getloadavg(), "cpus": os.cpu_count(), "affinity": aff,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "processor": platform.processor()}))
    return out / "student.json"


@torch_threads(1)
def dit_latency(layout: DataLayout, d: Path) -> list[tuple[str, float, float, float, float]]:
    import onnxruntime as ort
    import torch

    from robomirror.dit import DiTConfig, NormalizedDiT, load_trained
    from robomirror.flow import FlowConfig
    from train.export import DiTSampler, export_dit

    rows = []
    runs = sorted((layout.root / "runs" / "train").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    models = []
    if runs:
        model, flow, _ = load_trained(runs[-1].parent)
        models.append(("trained tiny DiT", model, flow))
    models.append(("paper preset (12 x 1024, random weights)", NormalizedDiT(DiTConfig.preset("paper", video_dim=64)),
                   FlowConfig()))
    for name, model, flow in models:
        cfg = model.dit.cfg
        path = export_dit(model, flow, d / "dit.onnx", {}, video_tokens=10)
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {"noise": np.zeros((1, cfg.motion_tokens, cfg.motion_dim), np.float32),
                "video_tokens": np.zeros((1, 10, cfg.video_dim), np.float32),
                "video_pooled": np.zeros((1, cfg.video_dim), np.float32)}
        sampler = DiTSampler(model.eval(), flow)
        args = tuple(torch.from_numpy(feed[k]) for k in ("noise", "video_tokens", "video_pooled"))
        with torch.no_grad():
            tp = _ms(lambda s=sampler, a=args: s(*a), 20)
        op = _ms(lambda s=sess, f=feed: s.run(None, f), 20)
        rows.append((name, *tp, *op))
    return rows


def vlm_latency(layout: DataLayout) -> tuple[str, float]:
    from deploy.intent import IntentModels

    m = IntentModels(layout)
    frames = np.random.default_rng(0).integers(0, 255, (60, 128, 128, 3), dtype=np.uint8)
    m.latent(frames, 30.0, "third_person")
    ts = [m.latent(frames, 30.0, "third_person")[1] for _ in range(5)]
    return m.vlm_id, float(np.median(ts))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.bench", description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the timed 50 Hz loop")
    ap.add_argument("--load", type=int, default=2, help="busy processes beside the second timed loop")
    ap.add_argument("--data-root")
    ap.add_argument("--student-only", action="store_true",
                    help="only the student width table (runs/deploy/bench/student.json); run it pinned: "
                         "OMP_NUM_THREADS=1 taskset -c 1 python -m deploy.bench --student-only")
    ap.add_argument("--quantized-closed-loop", action="store_true",
                    help="only deploy.quantized_check: the newest policy-learn run's trained student, float32 / int8 / "
                         "int4, open- and closed-loop error against torch and latency (<run>/quantized_check.json)")
    ap.add_argument("--run", help="with --quantized-closed-loop: the policy-learn run directory (default: the newest)")
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 1792])
    ap.add_argument("--iters", type=int, default=1000, help="timed calls per student row (after 10 warm-up calls)")
    args = ap.parse_args(argv)
    layout = DataLayout(Path(resolve_data_root(args.data_root)).resolve())
    con = Console(width=220)
    if args.quantized_closed_loop:
        from deploy.quantized_check import main as quantized_main

        return quantized_main((["--data-root", args.data_root] if args.data_root else [])
                              + (["--run", args.run] if args.run else []) + ["--iters", str(args.iters)])
    if args.student_only:
        with tempfile.TemporaryDirectory() as d:
            rows = student_width_table(Path(d), tuple(args.widths), args.iters)
        path = write_student_json(layout.root / "runs" / "deploy" / "bench", rows)
        con.print(student_table(rows))
        con.print(f"wrote {path}; load average now {os.getloadavg()}")
        return 0
    policies = sorted(layout.root.glob("runs/policy/*/policy.onnx"), key=lambda p: p.stat().st_mtime)
    with tempfile.TemporaryDirectory() as d:
        paper = paper_width_policy(Path(d))
        policy = policies[-1] if policies else paper
        loops = [loop_timing(policy, args.seconds, n, prio) for n, prio in ((0, None), (args.load, None),
                                                                            (args.load, 50))]
        loop = loops[0]
        out = layout.root / "runs" / "deploy" / "bench"
        out.mkdir(parents=True, exist_ok=True)
        publish_bytes(out / "loop.json", json_bytes(loop | {"policy": str(policy), "under_load": loops[1:]}))
        t = Table(title=f"50 Hz loop, sim backend, RealClock, {loop['cycles']} cycles (ideal period 20.000 ms); "
                        f"idle, then beside {args.load} busy processes on {os.cpu_count()} cores")
        for c in ("load", "scheduling", "period error p50 / p99 / max", "woke late p99 / max", "compute p50 / p99", "overruns",
                  "re-phased", "fault latched"):
            t.add_column(c)
        for lp in loops:
            pe, lw = lp["period_error_ms"], lp["late_wakeup_ms"]
            t.add_row(f"{lp['load_processes']} procs", lp["scheduling"], f"{pe['p50']:.2f} / {pe['p99']:.2f} / {pe['max']:.2f} ms",
                      f"{lw['p99']:.2f} / {lw['max']:.2f} ms",
                      f"{lp['compute_ms']['p50']:.2f} / {lp['compute_ms']['p99']:.2f} ms", str(lp["overruns"]),
                      str(lp["rephased"]), lp["fault"] or "none")
        con.print(t)
        sh = loop["shaping_changed"]
        con.print(f"shaping changed targets (joint-cycles of {sh['cycles']} cycles): "
                  + "; ".join(f"{k}: {v}" if v else f"{k}: none" for k, v in sh.items() if k != "cycles"))
        t = Table(title="latency on one CPU thread (paper: student DDIM-2 5.0 ms on a Jetson Orin NX; goal <= 1 ms)")
        for c in ("model", "torch p50 / p99 ms", "onnxruntime p50 / p99 ms"):
            t.add_column(c)
        if policies:
            o50, o99 = policy_latency(policy)
            t.add_row("student DDIM-2 (make policy export, via OnnxPolicy)", "", f"{o50:.2f} / {o99:.2f}")
        if (layout.store_dir / "clips.lance").exists():
            for name, t50, t99, o50, o99 in dit_latency(layout, Path(d)):
                t.add_row(f"DiT 2 steps: {name}", f"{t50:.1f} / {t99:.1f}", f"{o50:.1f} / {o99:.1f}")
            vlm, ms = vlm_latency(layout)
            t.add_row(f"VLM forward, 2 s window ({vlm}; a tiny stand-in)", f"{ms:.1f} (median)", "")
        con.print(t)
        rows = student_width_table(Path(d), tuple(args.widths), args.iters)
        write_student_json(out, rows)
        con.print(student_table(rows))
    if (layout.store_dir / "clips.lance").exists() and policies:
        from deploy.run import DeployRunConfig, print_report, run_deploy

        video = sorted(layout.root.glob("sample/motionx/video/*/*.mp4"))
        if video:
            print_report(run_deploy(layout, DeployRunConfig(video=str(video[0]), seconds=3.0), log=lambda *a: None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
