"""The trained student's quantised exports checked where they would be used: in closed loop.

`deploy.bench --student-only` reports int8 / int4 latency with the action error of random weights. This
checks a trained policy-learn run's student (the DAgger round it selected): the float32 export (the run's
own `policy.onnx`, its `.opt.onnx` timed and run), its dynamic int8 (per channel) and its 4-bit block
quantisation (MatMulNBits, blocks of 32), each against torch:

- open loop: |action - torch| on the student observations torch's own sim2sim evaluation visited (every
  clip, every step it tracked), with the noise the evaluation uses (zeros): max / p99 / mean in action
  units and as joint targets [rad] (x the contract's action scale);
- closed loop: Succ, E_mpjpe, E_mpkpe of each export driving the sim2sim setup on the run's clips
  (stand, walk), torch's beside them;
- latency on the calling thread (`train.export.session_options(1)`): p50 / p99 wall and CPU, on one of
  those observations.

Out: <run>/quantized_check.json (and policy.int8.onnx, policy.int4.onnx beside policy.onnx). Run it pinned
for the latency: OMP_NUM_THREADS=1 taskset -c 1 python -m deploy.quantized_check [--run DIR].
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from robomirror import g1_contract as g1
from robomirror.atomic import json_bytes, publish_bytes
from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout, resolve_data_root
from robomirror.timing import latency_stats, torch_threads

FORMAT_VERSION = 1
KINDS = ("float32", "int8", "int4")
LABELS = {"torch": "torch (reference)", "float32": "onnxruntime float32 (.opt.onnx)",
          "int8": "onnxruntime int8 (dynamic, per channel)", "int4": "onnxruntime int4 (MatMulNBits, blocks of 32)"}


class OnnxStudent:
    """An exported student as an evaluation policy (train.sim2sim.evaluate): obs["student"] (B, obs_dim) ->
    action (B, 23), DDIM from zero noise like policy-learn's torch student; one call per row where the
    export's batch is fixed (the runtime's batch 1)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        from train.export import session_options

        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        rows = self.session.get_inputs()[0].shape[0]
        self.rows = rows if isinstance(rows, int) else None

    def act(self, obs_student: np.ndarray) -> np.ndarray:
        obs = np.ascontiguousarray(obs_student, np.float32)
        noise = np.zeros((len(obs), g1.N_ACT), np.float32)
        if self.rows is None:
            return self.session.run(["action"], {"obs": obs, "noise": noise})[0]
        return np.concatenate([self.session.run(["action"], {"obs": obs[i:i + self.rows], "noise": noise[i:i + self.rows]})[0]
                               for i in range(0, len(obs), self.rows)])

    def __call__(self, obs: dict) -> torch.Tensor:
        return torch.from_numpy(self.act(obs["student"].numpy()))


def export_variants(student: torch.nn.Module, out_dir: Path, fp32: Path | None = None,
                    metadata: dict | None = None) -> dict[str, Path]:
    """{"float32": the optimised float32 file, "int8": ..., "int4": ...} for `student`; `fp32`: an existing
    export of it (the run's policy.onnx) to quantise instead of exporting again."""
    from train.export import export_student, optimized_path, quantize_int4, quantize_int8

    out_dir = Path(out_dir)
    if fp32 is None:
        fp32 = export_student(student, out_dir / "policy.onnx", metadata or {})
    opt = optimized_path(fp32)
    return {"float32": opt if opt.is_file() else Path(fp32),
            "int8": quantize_int8(fp32, out_dir / "policy.int8.onnx"),
            "int4": quantize_int4(fp32, out_dir / "policy.int4.onnx")}


def _summary(res: list, groups: dict[str, list[int]]) -> dict:
    from train.sim2sim import summarize

    return ({g: summarize([res[i] for i in ids]) for g, ids in groups.items()}
            | {"clips": [{"clip_id": r.clip_id, "succ": float(r.success), "steps": r.steps, "mpjpe_rad": r.mpjpe_rad,
                          "mpkpe_m": r.mpkpe_m} for r in res]})


@torch_threads(1)
def quantized_check(student: torch.nn.Module, library, groups: dict[str, list[int]], out_dir: Path,
                    fp32: Path | None = None, iters: int = 1000, sim: str = "sim2sim") -> dict:
    """Torch, float32, int8 and int4 of `student` (DDIM from zero noise), each: open-loop error against torch
    on torch's sim2sim observations, closed-loop Succ / E_mpkpe per group of clips (`groups`: name -> clip
    indices of `library`) and latency over `iters` calls on one thread. Quantised files go to `out_dir`."""
    from train.export import error_stats
    from train.sim2sim import evaluate

    student = student.eval()
    seen: list[np.ndarray] = []

    def torch_policy(obs: dict) -> torch.Tensor:
        seen.append(obs["student"].numpy().astype(np.float32))
        return student(obs["student"], torch.zeros((len(obs["student"]), g1.N_ACT)))

    res = evaluate(torch_policy, library, sim)
    # each clip's observations while it was tracked (after its end the env holds a reset world)
    obs = np.concatenate([np.stack([seen[t][i] for t in range(r.steps)]) for i, r in enumerate(res)])
    with torch.no_grad():
        want = student(torch.from_numpy(obs), torch.zeros((len(obs), g1.N_ACT))).numpy()
        sample = torch.from_numpy(obs[:1])
        zero = torch.zeros((1, g1.N_ACT))
        torch_lat = latency_stats(lambda: student(sample, zero), max(50, iters // 5))
    rows = [{"model": "torch", "file": None, "mb": None, "error": None,
             "sim2sim": _summary(res, groups), "latency": torch_lat,
             "loadavg_1min": os.getloadavg()[0]}]
    feed = {"obs": obs[:1], "noise": np.zeros((1, g1.N_ACT), np.float32)}
    for kind, path in export_variants(student, Path(out_dir), fp32).items():
        pol = OnnxStudent(path)
        lat = latency_stats(lambda s=pol.session: s.run(None, feed), iters)
        rows.append({"model": kind, "file": str(path), "mb": path.stat().st_size / 1e6,
                     "error": error_stats(pol.act(obs), want, p99=True), "sim2sim": _summary(evaluate(pol, library, sim), groups),
                     "latency": lat, "loadavg_1min": os.getloadavg()[0]})
    aff = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"format_version": FORMAT_VERSION, "sim": sim, "noise": "zeros (the evaluation's deterministic DDIM)",
            "clips": {g: [library.clip_ids[i] for i in ids] for g, ids in groups.items()},
            "width": int(student.cfg.width), "observations": int(len(obs)), "rows": rows,
            "machine": {"loadavg": list(os.getloadavg()), "cpus": os.cpu_count(), "affinity": aff,
                        "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}}


def run_library(layout: DataLayout, clips: dict[str, list[str]], config: dict | None = None):
    """The MotionLibrary of a run's clips ({"stand": [id], "walk": [ids]}, result.json's order) as policy-learn
    built it, and its groups of clip indices: store clips from the store, the walking clip of a run with
    walk="wheel" from its registry package's wheel (train.env.wheel_clips, as the run's config names it)."""
    from train.env.actuation import SIMS, build_model
    from train.env.motion_library import MotionLibrary, select_clips
    from train.env.wheel_clips import WheelClip, load_wheel_clip

    ids = [c for g in clips.values() for c in g]
    found = {c.clip_id: c for c in select_clips(layout, "clip_id IN (" + ", ".join(f"'{c}'" for c in ids) + ")")}
    if (config or {}).get("walk") == "wheel":
        spec = WheelClip(**config["walk_clip"])
        if spec.clip_id in ids and found:
            found[spec.clip_id] = load_wheel_clip(layout, spec, like=next(iter(found.values())))
    missing = [c for c in ids if c not in found]
    if missing:
        raise RoboMirrorError(f"clips {missing} of the run are not in the store under {layout.root}; found {sorted(found)}")
    groups, i = {}, 0
    for g, members in clips.items():
        groups[g] = list(range(i, i + len(members)))
        i += len(members)
    return MotionLibrary([found[c] for c in ids], build_model(SIMS["train"])), groups


def check_run(layout: DataLayout, run_dir: Path, iters: int = 1000) -> dict:
    """quantized_check of a policy-learn run's selected student on its clips; <run>/quantized_check.json."""
    from train.dagger import load_student

    run_dir = Path(run_dir)
    rfile = run_dir / "result.json"
    if not rfile.is_file():
        raise RoboMirrorError(f"{run_dir}: no result.json (expected a finished `make policy-learn` run)")
    result = json.loads(rfile.read_text())
    teacher_it, student_round = result["teacher_selected"]["iteration"], result["student_selected"]["iteration"]
    student = load_student(run_dir / f"student-it{teacher_it}", student_round)
    library, groups = run_library(layout, result["clips"], result.get("config"))
    fp32 = run_dir / "policy.onnx"
    out = quantized_check(student, library, groups, run_dir, fp32 if fp32.is_file() else None, iters)
    out |= {"run_dir": str(run_dir), "run_id": result.get("run_id"),
            "student": {"teacher_iteration": teacher_it, "dagger_round": student_round},
            "recorded_in_result_json": {g: result["eval"]["sim2sim"]["student"][g] for g in groups}}
    publish_bytes(run_dir / "quantized_check.json", json_bytes(out))
    return out


def check_table(out: dict) -> Table:
    groups = list(out["clips"])
    t = Table(title=f"trained student (width {out['width']}) and its exports, {out['sim']} closed loop from frame 0 "
                    f"on {', '.join(f'{g} {c}' for g, c in out['clips'].items())}; error = |action - torch| over the "
                    f"{out['observations']} observations of torch's rollout, zero noise; latency on one thread")
    for c in ("model", "max / p99 / mean error (action)", "max / mean error (rad)",
              *(f"{g} Succ / E_mpkpe m (steps)" for g in groups), "p50 / p99 ms", "CPU p50 / p99 ms", "MB"):
        t.add_column(c)
    for r in out["rows"]:
        e, lat, s = r["error"], r["latency"], r["sim2sim"]
        steps = {g: sum(c["steps"] for c in s["clips"] if c["clip_id"] in out["clips"][g]) for g in groups}
        t.add_row(LABELS[r["model"]],
                  f"{e['max_action']:.1e} / {e['p99_action']:.1e} / {e['mean_action']:.1e}" if e else "reference",
                  f"{e['max_rad']:.1e} / {e['mean_rad']:.1e}" if e else "",
                  *(f"{s[g]['succ']:.2f} / {s[g]['mpkpe_m']:.3f} ({steps[g]})" for g in groups),
                  f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}", f"{lat['cpu_p50_ms']:.2f} / {lat['cpu_p99_ms']:.2f}",
                  f"{r['mb']:.1f}" if r["mb"] else "")
    return t


def latest_learn_run(layout: DataLayout) -> Path:
    runs = sorted((layout.root / "runs" / "policy").glob("learn-*/result.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise RoboMirrorError(f"no policy-learn run under {layout.root / 'runs' / 'policy'}: run `make policy-learn`")
    return runs[-1].parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.quantized_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root")
    ap.add_argument("--run", help="policy-learn run directory (default: the newest runs/policy/learn-*)")
    ap.add_argument("--iters", type=int, default=1000, help="timed calls per export (torch: a fifth, >= 50)")
    args = ap.parse_args(argv)
    layout = DataLayout(Path(resolve_data_root(args.data_root)).resolve())
    run = Path(args.run) if args.run else latest_learn_run(layout)
    out = check_run(layout, run, args.iters)
    con = Console(width=220)
    con.print(check_table(out))
    rec = out["recorded_in_result_json"]
    con.print("recorded in result.json (torch student): "
              + "; ".join(f"{g} succ {s['succ']:.2f} E_mpkpe {s['mpkpe_m']:.3f} m" for g, s in rec.items()))
    con.print(f"wrote {run / 'quantized_check.json'}; load average now {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
