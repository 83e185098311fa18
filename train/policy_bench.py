"""`make bench` for the policy: each figure beside its baseline measured in the same run.

- env steps/s per core against raw `mj_step` of the same model for the same physics steps (the ratio
  is our env's overhead: observations, rewards, contacts, resets in Python);
- PPO iterations/s (rsl-rl, 16 envs x 24 steps, the paper's network sizes);
- student DDIM-2 latency p50/p99 on one CPU thread, paper width (1792), torch and onnxruntime
  (paper: 5.0 ms on a Jetson Orin NX; goal <= 1 ms here), and the DDIM-steps table (Table 12);
- the learning signal: the teacher on one standing clip of the sample store (nominal physics) after N
  PPO iterations against the untrained residual teacher (which replays the reference through the PD),
  same seeds, both evaluated from the clip's first frame.
Synthetic sample data: a learning signal, not a tracking result.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mujoco
import torch
from rich.console import Console
from rich.table import Table

from robomirror.timing import latency_ms, torch_threads
from train.env.actuation import SIMS, build_model
from train.env.tracking_env import EnvConfig, TrackingEnv
from train.student import StudentConfig, build_student


def _library():
    from train.env.synthetic import library  # a synthetic stand-and-sway clip; no store needed

    return library(2, seconds=4.0)


def env_overhead(n_envs: int = 16, steps: int = 100) -> tuple[float, float]:
    env = TrackingEnv(_library(), EnvConfig(num_envs=n_envs, seed=0))
    obs = env.get_observations()
    t = time.perf_counter()
    for _ in range(steps):
        obs, *_ = env.step(obs["residual_base"])
    env_sps = n_envs * steps / (time.perf_counter() - t)
    m = build_model(SIMS["train"])
    d = mujoco.MjData(m)
    d.qpos[2], d.qpos[3] = 0.76, 1.0
    n = steps * n_envs * SIMS["train"].decimation
    t = time.perf_counter()
    mujoco.mj_step(m, d, nstep=n)
    raw_sps = n / (time.perf_counter() - t)
    return env_sps, raw_sps / SIMS["train"].decimation  # raw, in env-step units


def ppo_rate(iterations: int = 3) -> float:
    from train.teacher import TeacherConfig, train_teacher

    env = TrackingEnv(_library(), EnvConfig(num_envs=16, seed=0))
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        train_teacher(env, TeacherConfig(iterations=iterations, save_every=iterations), Path(d))
        return iterations / (time.perf_counter() - t)


def student_latency(width: int, steps: int) -> tuple[tuple[float, float], tuple[float, float]]:
    import onnxruntime as ort

    from train.export import export_student

    st = build_student(StudentConfig(width=width, ddim_steps=steps)).eval()
    obs, noise = torch.randn(1, st.cfg.obs_dim), torch.randn(1, 23)
    with torch.no_grad():
        torch_ms = latency_ms(lambda: st(obs, noise))
    with tempfile.TemporaryDirectory() as d:
        path = export_student(st, Path(d) / "s.onnx", {})
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {"obs": obs.numpy(), "noise": noise.numpy()}
        onnx_ms = latency_ms(lambda: sess.run(None, feed))
    return torch_ms, onnx_ms


def learning_signal(layout, iterations: int, envs: int = 32) -> dict:
    from train.env.motion_library import MotionLibrary, select_clips
    from train.env.randomization import NOMINAL
    from train.sim2sim import evaluate, summarize
    from train.teacher import TeacherConfig, build_runner, train_teacher

    # the easiest clip of the sample: standing still (the PD alone sags under gravity and falls in ~1.2 s)
    clips = select_clips(layout, "stable AND split = 'train' AND text LIKE '%stands still%'", limit=1)
    lib = MotionLibrary(clips, build_model(SIMS["train"]))
    cfg = TeacherConfig(iterations=iterations, save_every=max(1, iterations // 4))
    env = TrackingEnv(lib, EnvConfig(num_envs=envs, seed=0, randomization=NOMINAL))
    untrained = build_runner(env, cfg).alg.actor.eval()
    before = summarize(evaluate(lambda o: untrained(o), lib))
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        s = train_teacher(env, cfg, Path(d))
        minutes = (time.perf_counter() - t) / 60
        from train.teacher import load_teacher

        trained = load_teacher(env, Path(d))
    after = summarize(evaluate(lambda o: trained(o), lib))
    h = s["history"]
    return {"clip": clips[0].clip_id, "minutes": minutes, "before": before, "after": after,
            "episode_len_first": h[0]["mean_episode_len"], "episode_len_last": h[-1]["mean_episode_len"],
            "reward_first": h[0]["mean_episode_reward"], "reward_last": h[-1]["mean_episode_reward"]}


@torch_threads(1)
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.policy_bench", description=__doc__)
    ap.add_argument("--iterations", type=int, default=300,
                    help="PPO iterations of the learning-signal run (300: ~10 min; 60 showed no signal)")
    ap.add_argument("--width", type=int, default=1792)
    args = ap.parse_args(argv)
    con = Console()
    env_sps, raw_sps = env_overhead()
    t = Table(title="policy env and PPO (one process, one thread)")
    for c in ("measure", "value", "baseline (same run)", "ratio"):
        t.add_column(c)
    t.add_row("env steps/s (16 worlds, train sim)", f"{env_sps:,.0f}", f"raw mj_step {raw_sps:,.0f} env-steps/s",
              f"{env_sps / raw_sps:.2f}x")
    t.add_row("PPO iterations/s (16 envs x 24 steps)", f"{ppo_rate():.2f}", "", "")
    con.print(t)
    t = Table(title=f"student latency, one CPU thread, width {args.width} (paper: DDIM-2 5.0 ms on a Jetson Orin NX)")
    for c in ("DDIM steps", "torch p50 / p99 ms", "onnxruntime p50 / p99 ms"):
        t.add_column(c)
    for steps in (2, 4, 6, 8, 10):
        (tp50, tp99), (op50, op99) = student_latency(args.width, steps)
        t.add_row(str(steps), f"{tp50:.2f} / {tp99:.2f}", f"{op50:.2f} / {op99:.2f}")
    con.print(t)
    from robomirror.paths import DataLayout, resolve_data_root

    layout = DataLayout(Path(resolve_data_root(None)).resolve())
    if (layout.store_dir / "clips.lance").exists():
        s = learning_signal(layout, args.iterations)
        t = Table(title=f"learning signal: teacher on standing clip {s['clip']}, {args.iterations} PPO iterations x 32 "
                        f"envs x 24 steps "
                        f"({s['minutes']:.1f} min), synthetic sample")
        for c in ("", "untrained residual teacher (floor)", "trained teacher"):
            t.add_column(c)
        for k, name in (("succ", "Succ"), ("mpjpe_rad", "E_mpjpe [rad]"), ("mpkpe_m", "E_mpkpe [m]")):
            t.add_row(name, f"{s['before'][k]:.3f}", f"{s['after'][k]:.3f}")
        t.add_row("training episode length (first -> last segment)", f"{s['episode_len_first']:.1f}",
                  f"{s['episode_len_last']:.1f}")
        t.add_row("training episode reward (first -> last segment)", f"{s['reward_first']:.1f}", f"{s['reward_last']:.1f}")
        con.print(t)
    else:
        con.print("learning signal skipped: no store under the data root (run `make latents`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
