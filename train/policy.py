"""`python -m train policy`: teacher (PPO) -> student (DAgger) -> sim2sim evaluation -> ONNX, on the store.

runs/policy/<run_id>/{run.json, teacher/, student/, policy.onnx, eval.json}; rows in the store's
`policy_evals` (per clip, policy and simulator, with the clip's `ground`: 'flat' or its scene's kind,
'stairs', 'bench', ...) and `policy_verdicts` (the paper's filter: per training clip
e(s) = alpha * E_key + beta * E_dof(lower body) under the teacher, flagged above 0.6; a verdict column,
never a deletion). eval.json's `table` is per policy and simulator, `table_by_ground` the same split by
ground (issue 22: scene clips next to flat ones). Third-person clips come first in the teacher's library.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  - pa.compute
import torch

from robomirror.atomic import digest_of, json_bytes, publish_bytes
from robomirror.paths import DataLayout
from robomirror.writer_lock import writer_lock
from train.dagger import DaggerConfig, load_student, train_student
from train.env.actuation import SIMS, build_model
from train.env.motion_library import MotionError, MotionLibrary, select_clips
from train.env.tracking_env import EnvConfig, TrackingEnv
from train.export import TOLERANCE, export_student, onnx_torch_gap
from train.sim2sim import evaluate, summarize
from train.student import StudentConfig
from train.teacher import TeacherConfig, load_teacher, train_teacher

POLICY_EVALS, POLICY_VERDICTS = "policy_evals", "policy_verdicts"
FILTER_THRESHOLD = 0.6  # the paper's e(s) > 0.6
FILTER_ALPHA, FILTER_BETA = 1.0, 1.0  # weights of E_key [m] and lower-body E_dof [rad]


@dataclass(frozen=True)
class PolicyRunConfig:
    where: str = "stable"
    latents: str = "vae"  # the student's training latents: "vae" (the clip's own motion) or "v2m" (the DiT's, §3.3)
    max_clips: int | None = 8
    num_envs: int = 16
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    sims: tuple[str, ...] = ("train", "sim2sim")
    videos: int = 2  # test clips rendered as student-vs-reference mp4s (0: none)

    @property
    def height_map(self) -> bool:
        """The terrain slice in the teacher's and the student's observations (StudentConfig.height_map, off by
        default): the env, the evaluation and the export follow the student's config. The robot runtime has
        no height source and refuses such a policy."""
        return self.student.height_map


def _library(layout: DataLayout, where: str, split: str, latents: str, limit: int | None) -> MotionLibrary:
    clips = select_clips(layout, f"({where}) AND split = '{split}'", latents, limit=None)
    clips.sort(key=lambda c: (c.provenance.get("view") != "third_person", c.clip_id))  # third person first
    if limit:  # `limit` flat clips, and the split's scene clips beside them (up to limit // 4, at least 1), so
        # the evaluation by ground has scene rows whenever the store has scene clips (issue 22)
        scene = [c for c in clips if c.scene is not None]
        clips = [c for c in clips if c.scene is None][:limit] + scene[:max(1, limit // 4)]
    return MotionLibrary(clips, build_model(SIMS["train"]))


def run_policy(layout: DataLayout, cfg: PolicyRunConfig, resume: bool = False, progress: bool = True) -> dict:
    say = print if progress else (lambda *a, **k: None)
    train_lib = _library(layout, cfg.where, "train", cfg.latents, cfg.max_clips)
    test_lib = _library(layout, cfg.where, "test", "vae", cfg.max_clips)
    prov = train_lib.provenance[0]
    run_id = digest_of([asdict(cfg), train_lib.clip_ids, test_lib.clip_ids, prov["vae_id"]])[:12]
    run_dir = layout.root / "runs" / "policy" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"run_id": run_id, "config": json.loads(json.dumps(asdict(cfg), default=list)),
            "train_clips": train_lib.clip_ids, "test_clips": test_lib.clip_ids, "vae_id": prov["vae_id"],
            "vlm_id": prov["vlm_id"], "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    publish_bytes(run_dir / "run.json", json_bytes(meta))
    say(f"policy run {run_id}: {train_lib.n_clips} train clips, {test_lib.n_clips} test clips -> {run_dir}")

    env = TrackingEnv(train_lib, EnvConfig(num_envs=cfg.num_envs, seed=cfg.teacher.seed, height_map=cfg.height_map))
    t0 = time.time()
    teacher_summary = train_teacher(env, cfg.teacher, run_dir / "teacher", resume=resume,
                             progress=lambda h: say(f"  teacher it {h['iteration']}: episode length "
                                                    f"{h['mean_episode_len']:.1f}, reward {h['mean_episode_reward']:.1f}, "
                                                    f"mpkpe {h['mean_mpkpe_m'] * 100:.1f} cm"))
    teacher = load_teacher(env, run_dir / "teacher")
    student_summary = train_student(env, teacher, cfg.student, cfg.dagger, run_dir / "student", resume=resume,
                                    progress=lambda h: say(f"  student round {h['round']}: loss {h['loss']:.4f}, "
                                                           f"beta {h['beta']:.2f}, buffer {h['buffer']}"))
    student = load_student(run_dir / "student")
    train_s = time.time() - t0

    def student_policy(obs):
        return student(obs["student"], torch.zeros((len(obs["student"]), 23)))

    # the floor: the PD replaying the reference with no policy (what the residual teacher starts from)
    policies = [("replay_reference", lambda o: o["residual_base"], test_lib), ("teacher", lambda o: teacher(o), test_lib),
                ("student_vae", student_policy, test_lib)]
    try:
        v2m_lib = _library(layout, cfg.where, "test", "v2m", cfg.max_clips)
        policies.append(("student_v2m", student_policy, v2m_lib))
    except (MotionError, Exception) as e:  # noqa: BLE001 - no DiT run on this store: say so, evaluate the rest
        say(f"  student_v2m skipped: {e}")
    rows, table, by_ground = evaluate_policies(policies, cfg.sims, run_id, prov, cfg.latents, cfg.height_map)
    verdicts = _verdicts(run_id, teacher, train_lib, cfg.height_map)
    videos = _videos(run_dir, student_policy, test_lib, cfg.videos, say, cfg.height_map)
    onnx_path = export_student(student, run_dir / "policy.onnx",
                               {"run_id": run_id, "vae_id": prov["vae_id"], "vlm_id": prov["vlm_id"],
                                "latents": cfg.latents, "dit_run": (policies[-1][2].provenance[0].get("dit_run")
                                                              if len(policies) > 3 else None)})
    dit_run = policies[-1][2].provenance[0].get("dit_run") if len(policies) > 3 else None
    dit_onnx = _export_dit(layout, dit_run, run_dir, prov) if dit_run else None
    gap = onnx_torch_gap(student, onnx_path)
    if gap > TOLERANCE:
        raise RuntimeError(f"exported ONNX differs from torch by {gap:.2e} > {TOLERANCE}")
    with writer_lock(layout.root, "policy results"):
        _write_rows(layout.store_dir, POLICY_EVALS, rows, run_id)
        _write_rows(layout.store_dir, POLICY_VERDICTS, verdicts, run_id)
    summary = {"run_id": run_id, "run_dir": str(run_dir), "table": table, "table_by_ground": by_ground,
               "onnx": str(onnx_path),
               "onnx_max_abs_diff": gap, "dit_onnx": dit_onnx, "train_seconds": round(train_s, 1), "teacher": teacher_summary["history"],
               "student": student_summary["history"], "videos": videos, "flagged_clips": sum(not v["keep"] for v in verdicts)}
    publish_bytes(run_dir / "eval.json", json_bytes({k: v for k, v in summary.items()}))
    return summary


def evaluate_policies(policies: list[tuple[str, Callable, MotionLibrary]], sims: tuple[str, ...], run_id: str,
                      prov: dict, trained_on: str, height_map: bool = False) -> tuple[list[dict], dict, dict]:
    """Every (name, policy, library) in every simulator: the policy_evals rows (one per clip, with its ground:
    'flat' or the scene's kind), the table per "name/sim" and the same table split by ground."""
    rows, table, by_ground = [], {}, {}
    for sim in sims:
        for name, fn, lib in policies:
            res = evaluate(fn, lib, sim, height_map=height_map)
            table[f"{name}/{sim}"] = summarize(res)
            by_ground[f"{name}/{sim}"] = summarize(res, by_ground=True)
            rows += [{"run_id": run_id, "policy": name, "sim": sim, "clip_id": r.clip_id, "ground": r.ground,
                      "success": r.success, "mpjpe_rad": r.mpjpe_rad, "mpkpe_m": r.mpkpe_m, "steps": r.steps,
                      "vae_id": prov["vae_id"], "vlm_id": prov["vlm_id"] or "", "latents": lib.provenance[0]["latents"],
                      "student_trained_on": trained_on, "dit_run": lib.provenance[0].get("dit_run") or ""}
                     for r in res]
    return rows, table, by_ground


def _verdicts(run_id: str, teacher, lib: MotionLibrary, height_map: bool = False) -> list[dict]:
    """e(s) = alpha * E_key [m] + beta * E_dof of the 12 leg joints [rad], under the teacher."""
    out = []
    for r in evaluate(lambda o: teacher(o), lib, "train", height_map=height_map):
        e = FILTER_ALPHA * r.mpkpe_m + FILTER_BETA * float(np.mean(r.joint_err_rad[:12]))
        out.append({"run_id": run_id, "clip_id": r.clip_id, "e_s": float(e), "keep": bool(e <= FILTER_THRESHOLD),
                    "teacher_success": r.success})
    return out


def _videos(run_dir: Path, policy, lib: MotionLibrary, n: int, say, height_map: bool = False) -> list[str]:
    from robomirror.errors import RoboMirrorError
    from train.policy_video import render_policy_clip

    if n <= 0:
        return []
    sub = lib.subset(list(range(min(n, lib.n_clips))))
    model = build_model(SIMS["train"], scenes=sub.scenes)  # the env's model: scene clips drawn on their scene
    out = []
    try:
        for i, r in enumerate(evaluate(policy, sub, "train", record=True, height_map=height_map)):
            path = render_policy_clip(model, r.qpos, sub, i, run_dir / "videos" / f"{r.clip_id}.mp4")
            out.append(str(path))
    except RoboMirrorError as e:  # no GL here: the numbers stand without the pictures
        say(f"  videos skipped: {e}")
    return out


def _export_dit(layout: DataLayout, dit_run: str, run_dir: Path, prov: dict) -> str:
    """The DiT the v2m latents came from, as ONNX beside the policy (for a Jetson that runs both)."""
    import lance

    from robomirror.dit import load_trained
    from train.export import export_dit

    model, flow, meta = load_trained(layout.root / "runs" / "train" / dit_run)
    counts = lance.dataset(str(layout.store_dir / "video_tokens.lance")).to_table(columns=["n_tokens"])
    n = int(np.bincount(counts["n_tokens"].to_numpy()).argmax())
    return str(export_dit(model, flow, run_dir / "dit.onnx", {"dit_run": dit_run, "vae_id": prov["vae_id"],
                                                                "vlm_id": prov["vlm_id"]}, video_tokens=n))


def _write_rows(store: Path, name: str, rows: list[dict], run_id: str) -> None:
    import lancedb

    from train.pipeline import _replace_rows

    if not rows:
        return
    db, table = lancedb.connect(str(store)), pa.Table.from_pylist(rows)
    if name in db.table_names():
        old = db.open_table(name)
        if set(old.schema.names) != set(table.schema.names):  # a table from an older version of this code:
            keep = old.to_arrow().filter(pa.compute.field("run_id") != run_id)  # one new Lance version
            db.create_table(name, data=pa.concat_tables([keep, table], promote_options="default"), mode="overwrite")
            return
    _replace_rows(db, name, table, f"run_id = '{run_id}'")


def ground_table_lines(by_ground: dict) -> list[str]:
    """The table split by ground, as printed: one line per policy/sim and ground with clips (all, flat,
    scene = every scene clip, then each scene kind)."""
    out = [f"{'policy/sim':28s} {'ground':8s} {'Succ':>6s} {'E_mpjpe rad':>12s} {'E_mpkpe m':>10s} {'clips':>6s}"]
    for k, grounds in by_ground.items():
        for g, v in grounds.items():
            if v["clips"]:
                out.append(f"{k:28s} {g:8s} {v['succ']:6.2f} {v['mpjpe_rad']:12.3f} {v['mpkpe_m']:10.3f} {v['clips']:6d}")
    return out


def print_policy_summary(s: dict) -> None:
    print(f"\npolicy run {s['run_id']} ({s['train_seconds']} s of training) -> {s['run_dir']}")
    print(f"{'policy/sim':28s} {'Succ':>6s} {'E_mpjpe rad':>12s} {'E_mpkpe m':>10s} {'clips':>6s}")
    for k, v in s["table"].items():
        print(f"{k:28s} {v['succ']:6.2f} {v['mpjpe_rad']:12.3f} {v['mpkpe_m']:10.3f} {v['clips']:6d}")
    if s.get("table_by_ground"):
        print("\nby ground (scene clips play on their scene; 'scene' is every scene clip, then each kind):")
        print("\n".join(ground_table_lines(s["table_by_ground"])))
    print(f"ONNX {s['onnx']} (onnxruntime vs torch max |diff| {s['onnx_max_abs_diff']:.1e}); "
          f"{s['flagged_clips']} training clip(s) flagged e(s) > {FILTER_THRESHOLD} in policy_verdicts")
    best = max((v["succ"] for k, v in s["table"].items() if not k.startswith("replay")), default=0.0)
    print(f"PLUMBING, not a tracker: this run trains for {s['train_seconds']} s on CPU (a tracker needs orders of "
          f"magnitude more steps); best Succ of a policy here {best:.2f}. `make policy-learn` is the CPU-budget "
          "tracker run (runs/policy/learn-<id>/result.json says what it reaches).")
