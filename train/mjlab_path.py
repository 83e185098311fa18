"""The GPU path, run end to end on a CPU: mjlab's tracking task on mujoco-warp in its own venv, on a motion
from our store, and its ONNX in deploy/'s sim.

    python -m train.mjlab_path [--clip ID --data-root ROOT] [--iterations 3 --envs 4 --cycles 150]

1. the GPU venv (requirements-gpu.txt: mjlab 1.6.0, mujoco / mujoco-warp 3.11, rsl-rl-lib 5.4.2, torch
   2.14.1; on a machine without an NVIDIA GPU torch 2.13.0's CPU build instead, see venv_spec) is built
   once under data/cache, keyed by the file's hash (robomirror.venv_cache), and reused;
2. a clip is exported from a store in mjlab's motion layout (`retarget export --format mjlab`): the
   given clip of the given store, or, without --clip, the first clip of a tiny store built here from the
   sample corpus' one G1 CSV take (ingest + retarget, serial, seconds);
3. mjlab's own train script runs `Mjlab-Tracking-Flat-Unitree-G1-No-State-Estimation` (the variant whose
   observation the robot's low state can feed) for a few PPO iterations with `--gpu-ids None`: mjlab then
   empties CUDA_VISIBLE_DEVICES, picks device cpu and Warp its CPU device (its default `--gpu-ids [0]` on a
   machine without a GPU stops in mjlab/utils/gpu.py: select_gpus with `IndexError: list index out of
   range`); its runner exports `<run>.onnx` with its metadata;
4. `python -m deploy.mjlab_policy` loads that ONNX through the G1 contract and runs it in the sim.

A few iterations are plumbing, not a tracker: the G1 falls, and the summary says so. Everything lands
in --out (default <data root>/runs/mjlab_path/<time>), with `summary.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from robomirror.atomic import publish_bytes
from robomirror.errors import RoboMirrorError
from robomirror.paths import resolve_data_root
from robomirror.venv_cache import ROOT, VenvError, build_cached_venv

REQUIREMENTS = ROOT / "requirements-gpu.txt"
TASK = "Mjlab-Tracking-Flat-Unitree-G1-No-State-Estimation"
VENV_NAME = "gpu-venv"


class MjlabPathError(RoboMirrorError):
    """A stage of the GPU path failed; the message carries that stage's own last lines."""


@dataclass(frozen=True)
class MjlabPathConfig:
    out: Path
    clip: str | None = None  # None: a tiny store from the sample's G1 CSV take
    data_root: Path | None = None  # the store --clip is exported from
    iterations: int = 3  # PPO iterations (mjlab's --agent.max-iterations)
    envs: int = 4  # parallel worlds on Warp's CPU device
    cycles: int = 150  # 50 Hz deploy cycles in the sim
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.envs < 1 or self.cycles < 1:
            raise MjlabPathError(f"iterations, envs and cycles must be >= 1, got {self.iterations}, {self.envs}, "
                                 f"{self.cycles}")
        if self.clip is not None and self.data_root is None:
            raise MjlabPathError("--clip needs --data-root (the store it is exported from)")


# On a machine without an NVIDIA GPU (CI, this path's own test) the venv takes PyTorch's CPU build, a 192 MB wheel,
# instead of requirements-gpu.txt's CUDA build (about 5.5 GB installed with its nvidia-* wheels): the two are the
# same API to mjlab, and a clean clone's CI then needs ~1 GB less than the main venv for this venv, not ~7 GB
CPU_TORCH = "torch==2.13.0"


def torch_build() -> str:
    """'cuda' where an NVIDIA GPU is visible (a device node or nvidia-smi), else 'cpu'."""
    return "cuda" if Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") else "cpu"


def venv_spec(build: str | None = None) -> tuple[str, list[list[str]]]:
    """(the cached venv's name, its pip installs) for torch `build` ('cuda' | 'cpu'; default: torch_build()).
    'cpu' installs CPU_TORCH first, then every other pin of requirements-gpu.txt with CPU_TORCH held (mjlab's
    torch>=2.7 is met)."""
    build = build or torch_build()
    if build == "cuda":
        return VENV_NAME, [["-r", str(REQUIREMENTS)]]
    if build != "cpu":
        raise MjlabPathError(f"torch build must be 'cuda' or 'cpu', got {build!r}")
    pins = [ln.split("#", 1)[0].strip() for ln in REQUIREMENTS.read_text().splitlines()]
    pins = [p for p in pins if p and not re.match(r"torch\s*[=<>~!]", p)]
    # torch stays pinned in the second install too: rsl-rl-lib asks for torchvision (it never imports it), and
    # unpinned pip would take torchvision 0.29.1 and with it torch 2.14.1's CUDA build after all
    return f"{VENV_NAME}-cputorch", [[CPU_TORCH], [*pins, CPU_TORCH]]


def gpu_python(log=print, build: str | None = None) -> Path:
    """The GPU venv's python, built on first use (minutes: a CUDA torch is several GB) and cached."""
    name, installs = venv_spec(build)
    return build_cached_venv(name, sys.executable, REQUIREMENTS, installs, log=log)


def _run(cmd: list[str], log_path: Path, stage: str, env: dict | None = None, echo: bool = False,
         timeout_s: float = 3600) -> None:
    """Run a stage, its output into log_path (and echoed); a failure raises with its last lines."""
    tail: deque[str] = deque(maxlen=15)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as f:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                             env={**os.environ, **(env or {})})
        t0 = time.monotonic()
        for line in p.stdout:
            f.write(line)
            tail.append(line.rstrip())
            if echo:
                print(line, end="", flush=True)
            if time.monotonic() - t0 > timeout_s:
                p.kill()
                break
        rc = p.wait()
    if rc != 0:
        last = "\n  ".join(tail)
        raise MjlabPathError(f"{stage} failed (exit {rc}; {log_path}):\n  {last}")


def export_motion(cfg: MjlabPathConfig, work: Path) -> tuple[str, Path]:
    """(clip id, mjlab motion npz): the given clip of the given store, or the first clip of a tiny store
    built from the sample corpus' G1 CSV take."""
    py = sys.executable
    if cfg.clip is not None:
        root, clip = Path(cfg.data_root), cfg.clip
    else:
        root = work / "store"
        env = {"ROBOMIRROR_DATA": str(root), "RAY_USAGE_STATS_ENABLED": "0"}
        _run([py, "-m", "ingest", "sample", "--motionx", "0", "--nymeria", "0", "--nymeria-no-video", "0",
              "--g1-csv", "1", "--no-bones-seed", "--motionx-short", "0", "--no-scenes"], work / "logs" / "sample.log",
             "ingest sample", env)
        _run([py, "-m", "ingest", "run", "--g1-csv", str(root / "sample" / "g1_csv"), "--only", "g1_csv",
              "--executor", "serial", "--no-progress"], work / "logs" / "ingest.log", "ingest run", env)
        _run([py, "-m", "retarget", "run", "--executor", "serial", "--no-progress"], work / "logs" / "retarget.log",
             "retarget run", env)
        import pyarrow.parquet as pq

        manifests = sorted(root.glob("shards/retarget/*/manifest.parquet"))
        if not manifests:
            raise MjlabPathError(f"the tiny store under {root} has no retarget manifest (see {work / 'logs'})")
        clip = pq.read_table(manifests[0]).column("clip_id")[0].as_py()
    out = work / "motion.npz"
    _run([py, "-m", "retarget", "export", "--clip", clip, "--format", "mjlab", "--fps", "50", "--out", str(out)],
         work / "logs" / "export.log", "retarget export", {"ROBOMIRROR_DATA": str(root)})
    return clip, out


def train_mjlab(gpu_py: Path, motion: Path, cfg: MjlabPathConfig, work: Path) -> Path:
    """mjlab's train script on Warp's CPU device; returns the ONNX its runner exported."""
    logs = work / "mjlab"
    _run([str(gpu_py), "-m", "mjlab.scripts.train", TASK, "--env.commands.motion.motion-file", str(motion),
          "--env.scene.num-envs", str(cfg.envs), "--agent.max-iterations", str(cfg.iterations),
          "--agent.seed", str(cfg.seed), "--agent.logger", "tensorboard", "--agent.upload-model", "False",
          "--gpu-ids", "None", "--log-root", str(logs)], work / "logs" / "mjlab_train.log",
         "mjlab training on Warp's CPU device", {"WANDB_MODE": "disabled"}, echo=True)
    onnx = sorted(logs.glob("*/*/*.onnx"), key=lambda p: p.stat().st_mtime)
    if not onnx:
        warn = [ln for ln in (work / "logs" / "mjlab_train.log").read_text().splitlines() if "ONNX export failed" in ln]
        raise MjlabPathError(f"mjlab trained but exported no ONNX under {logs}: {warn or 'no message from its runner'}")
    return onnx[-1]


def run_path(cfg: MjlabPathConfig, log=print) -> dict:
    work = Path(cfg.out)
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t = time.monotonic()
    try:
        gpu_py = gpu_python(log)
    except VenvError as e:
        raise MjlabPathError(str(e)) from e
    times["venv_s"] = time.monotonic() - t
    log(f"[1/4] GPU venv: {gpu_py.parents[1]} ({times['venv_s']:.0f} s)")
    t = time.monotonic()
    clip, motion = export_motion(cfg, work)
    times["export_s"] = time.monotonic() - t
    log(f"[2/4] clip {clip} exported in mjlab's layout: {motion} ({times['export_s']:.0f} s)")
    t = time.monotonic()
    onnx = train_mjlab(gpu_py, motion, cfg, work)
    times["train_s"] = time.monotonic() - t
    log(f"[3/4] mjlab {TASK}: {cfg.iterations} iterations x {cfg.envs} envs on Warp's CPU device, "
        f"ONNX {onnx} ({times['train_s']:.0f} s)")
    t = time.monotonic()
    deploy_json = work / "deploy.json"
    _run([sys.executable, "-m", "deploy.mjlab_policy", "--policy", str(onnx), "--cycles", str(cfg.cycles),
          "--seed", str(cfg.seed), "--json", str(deploy_json)], work / "logs" / "deploy.log", "deploy (sim)",
         echo=True)
    times["deploy_s"] = time.monotonic() - t
    outcome = json.loads(deploy_json.read_text())
    summary = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
               "task": TASK, "clip": clip, "motion": str(motion), "onnx": str(onnx), "venv": str(gpu_py.parents[1]),
               "seconds": {k: round(v, 1) for k, v in times.items()}, "deploy": outcome,
               "note": f"plumbing: {cfg.iterations} PPO iterations make no tracker; "
                       f"{'the G1 stayed up' if outcome['stayed_up'] else 'the G1 fell'} in the sim"}
    publish_bytes(work / "summary.json", json.dumps(summary, indent=1).encode())
    log(f"[4/4] deploy: {summary['note']} ({outcome['fault'] or 'no fault'}); total "
        f"{sum(times.values()):.0f} s; {work / 'summary.json'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.mjlab_path", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", help="a clip id of --data-root's store (default: a tiny store from the sample)")
    ap.add_argument("--data-root", help="the store --clip is exported from")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--envs", type=int, default=4)
    ap.add_argument("--cycles", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="work folder (default <data root>/runs/mjlab_path/<time>)")
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else resolve_data_root() / "runs" / "mjlab_path" / time.strftime("%Y%m%d-%H%M%S")
    try:
        cfg = MjlabPathConfig(out, a.clip, Path(a.data_root) if a.data_root else None, a.iterations, a.envs,
                              a.cycles, a.seed)
        run_path(cfg)
    except MjlabPathError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
