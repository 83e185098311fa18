"""DAgger for the student: the student acts in the simulator, the teacher labels every visited state.

Round r: envs act with the teacher with probability beta_r = beta0 * 0.5**r (round 0: the teacher
only), otherwise with the student's sample; every visited state's student observation is stored with
the teacher's deterministic action as its label (the aggregated buffer, FIFO beyond its size); the
student then trains on the buffer. Each round starts from a reset env and generators seeded by
(seed, round) and ends with a checkpoint (weights, optimizer, buffer): a killed run resumes exactly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from robomirror import g1_contract as g1
from robomirror.atomic import publish_with
from robomirror.trainer import latest_checkpoint, load_checkpoint, save_checkpoint
from train.student import StudentConfig, build_student
from train.teacher import PolicyError, seed_all


@dataclass(frozen=True)
class DaggerConfig:
    rounds: int = 4
    steps_per_round: int = 48  # env steps per round (x num_envs samples)
    updates_per_round: int = 150
    batch_size: int = 256
    learning_rate: float = 1e-3
    buffer_size: int = 20000
    beta0: float = 1.0
    seed: int = 0


def teacher_action(teacher: torch.nn.Module, obs) -> torch.Tensor:
    with torch.no_grad():
        return teacher(obs)


def student_action(student: torch.nn.Module, obs_student: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    with torch.no_grad():
        return student(obs_student, torch.randn((len(obs_student), g1.N_ACT), generator=gen), gen)


def _buffer_path(ckpt: Path) -> Path:
    return ckpt.parent / f"buffer-{ckpt.name}.safetensors"


def train_student(env, teacher: torch.nn.Module, scfg: StudentConfig, dcfg: DaggerConfig, out: Path,
                  resume: bool = False, progress=None) -> dict:
    from safetensors.torch import load_file, save

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed_all(dcfg.seed, 2 ** 31)
    student = build_student(scfg)
    opt = torch.optim.Adam(student.parameters(), lr=dcfg.learning_rate, betas=(0.9, 0.999))
    obs_buf = torch.zeros((0, scfg.obs_dim))
    act_buf = torch.zeros((0, g1.N_ACT))
    start, history = 0, []
    ckpt = latest_checkpoint(out) if resume else None
    if ckpt is not None:
        import json

        saved = json.loads((ckpt / "state.json").read_text()).get("student_config")
        if isinstance(saved, dict):  # a key added to StudentConfig since (height_map) reads as its default
            saved = asdict(StudentConfig()) | saved
        if saved != asdict(scfg):
            raise PolicyError(f"checkpoint {ckpt} is of another student config ({saved}); expected {asdict(scfg)}: "
                              "resume with the same flags or start a new run directory")
        state = load_checkpoint(ckpt, student, opt)
        buf = load_file(str(_buffer_path(ckpt)))
        obs_buf, act_buf = buf["obs"].float(), buf["action"]
        start, history = state["round"], state["history"]
    t0 = time.time()
    for r in range(start, dcfg.rounds):
        seed_all(dcfg.seed, r)
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([dcfg.seed, r, 1]).generate_state(1)[0]))
        env.rng = np.random.default_rng([dcfg.seed, r])
        env.reset(np.arange(env.num_envs))
        beta = dcfg.beta0 * 0.5 ** r
        obs = env.get_observations()
        new_obs, new_act, mpkpe, falls = [], [], [], 0
        student.eval()
        for _ in range(dcfg.steps_per_round):
            label = teacher_action(teacher, obs)
            new_obs.append(obs["student"].clone())
            new_act.append(label)
            use_teacher = torch.rand((env.num_envs, 1), generator=gen) < beta
            act = label if beta >= 1.0 else torch.where(use_teacher, label, student_action(student, obs["student"], gen))
            obs, _, _, extras = env.step(act)
            mpkpe.append(float(extras["metrics"]["mpkpe_m"].mean()))
            falls += int(extras["terminated"].sum())
        obs_buf = torch.cat([obs_buf, *new_obs])[-dcfg.buffer_size:]
        act_buf = torch.cat([act_buf, *new_act])[-dcfg.buffer_size:]
        student.normalizer.fit(obs_buf)
        student.train()
        losses = []
        for _ in range(dcfg.updates_per_round):
            idx = torch.randint(0, len(obs_buf), (dcfg.batch_size,), generator=gen)
            loss = student.loss(obs_buf[idx], act_buf[idx], gen)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
        history.append({"round": r + 1, "beta": beta, "buffer": len(obs_buf), "loss": float(np.mean(losses[-20:])),
                        "rollout_mpkpe_m": float(np.mean(mpkpe)), "terminations": falls,
                        "seconds": round(time.time() - t0, 2)})
        ckpt_name = f"ckpt-{r + 1:08d}"
        blob = save({"obs": obs_buf.half().contiguous(), "action": act_buf.contiguous()})
        publish_with(out / f"buffer-{ckpt_name}.safetensors", lambda f, b=blob: f.write(b))
        obs_buf = obs_buf.half().float()  # what a resume reads back, so both paths train on the same values
        save_checkpoint(out, r + 1, student, opt, {"round": r + 1, "history": history, "student_config": asdict(scfg),
                                                   "dagger_config": asdict(dcfg)})
        for old in out.glob("buffer-ckpt-*.safetensors"):  # keep only the latest round's buffer
            if old.name != f"buffer-{ckpt_name}.safetensors":
                old.unlink()
        if progress:
            progress(history[-1])
    student.eval()
    return {"rounds": dcfg.rounds, "history": history, "checkpoint": str(latest_checkpoint(out)), "model": student}


def load_student(run_dir: Path, round: int | None = None) -> torch.nn.Module:
    """The student of the latest DAgger round's checkpoint, or of `round`'s."""
    import json

    ckpt = latest_checkpoint(Path(run_dir)) if round is None else Path(run_dir) / f"ckpt-{round:08d}"
    if ckpt is None or not ckpt.is_dir():
        raise PolicyError(f"no student checkpoint {'' if round is None else f'of round {round} '}under {run_dir}; "
                          "run `python -m train student` first")
    state = json.loads((ckpt / "state.json").read_text())
    student = build_student(StudentConfig(**state["student_config"]))
    load_checkpoint(ckpt, student)
    student.eval()
    return student
