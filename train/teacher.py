"""The teacher: PPO (rsl-rl's, unmodified) on a Mixture-of-Experts residual actor.

The actor sees the teacher observation (489: proprioception history + reference); its experts and
a softmax gate read the same normalized input and their gate-weighted sum is a residual added to
the reference joint positions (obs group `residual_base`, in action units), so an untrained teacher
already replays the reference through the PD. The critic reads the teacher observation and the
privileged one (250). Hyperparameters are the paper's Table 8; widths are configurable for CPU.

Training runs in segments of `save_every` PPO iterations. Each segment starts from a reset env and
generators seeded by (seed, iteration), and ends with a safetensors checkpoint (actor, critic,
optimizer, curricula, adaptive sigmas): a run killed mid-way resumes from its last checkpoint and
ends bit-identical to one that never stopped. rsl-rl's own checkpoints (torch pickles) are not used.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from rsl_rl.models import MLPModel
from rsl_rl.modules import MLP
from rsl_rl.runners import OnPolicyRunner
from tensordict import TensorDict

from robomirror import g1_contract as g1
from robomirror.errors import RoboMirrorError
from robomirror.trainer import CKPT_PREFIX, latest_checkpoint, load_checkpoint, save_checkpoint


class PolicyError(RoboMirrorError):
    pass


class MoE(torch.nn.Module):
    """`n` expert MLPs and a softmax gate over the same input; output = sum_i gate_i * expert_i."""

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, ...], activation: str, n: int) -> None:
        super().__init__()
        self.experts = torch.nn.ModuleList(MLP(in_dim, out_dim, hidden, activation) for _ in range(n))
        self.gate = MLP(in_dim, n, hidden[:1], activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.gate(x), -1)
        return torch.einsum("...e,e...o->...o", w, torch.stack([e(x) for e in self.experts]))

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.gate(x), -1)


class MoEResidualModel(MLPModel):
    """rsl-rl model: normalized observation -> MoE -> + reference joint positions -> Gaussian."""

    def __init__(self, obs: TensorDict, obs_groups: dict, obs_set: str, output_dim: int,
                 hidden_dims=(768, 512, 128), activation: str = "elu", obs_normalization: bool = True,
                 distribution_cfg: dict | None = None, num_experts: int = 5, residual_group: str = "residual_base") -> None:
        super().__init__(obs, obs_groups, obs_set, output_dim, hidden_dims, activation, obs_normalization,
                         distribution_cfg)
        out = self.distribution.input_dim if self.distribution is not None else output_dim
        self.mlp = MoE(self._get_latent_dim(), out, tuple(hidden_dims), activation, num_experts)
        self.residual_group = residual_group

    normalization_frozen = False  # train_teacher sets it after a warm start (TeacherConfig.freeze_normalizer)

    def update_normalization(self, obs: TensorDict) -> None:
        if not self.normalization_frozen:
            super().update_normalization(obs)

    def forward(self, obs, masks=None, hidden_state=None, stochastic_output: bool = False) -> torch.Tensor:
        mean = self.mlp(self.get_latent(obs, masks, hidden_state)) + obs[self.residual_group]
        if self.distribution is not None:
            if stochastic_output:
                self.distribution.update(mean)
                return self.distribution.sample()
            return self.distribution.deterministic_output(mean)
        return mean


@dataclass(frozen=True)
class TeacherConfig:
    iterations: int = 50
    save_every: int = 10
    steps_per_env: int = 24
    num_experts: int = 5  # the paper's text; its Table 8 says 4
    actor_hidden: tuple[int, ...] = (768, 512, 128)
    critic_hidden: tuple[int, ...] = (512, 256, 128)
    init_std: float = 0.3
    learning_rate: float = 1e-3
    # > 0: before PPO, this many regression steps of the residual on inverse-dynamics offsets (warm_start)
    warm_start_steps: int = 0
    warm_start_rollout_steps: int = 100  # env steps (x num_envs states) the regression's states come from
    warm_start_noise_std: float = 0.0  # action noise on those rollouts (labels stay clean): warm_start's DART
    # the first iterations train the critic only (the actor's parameters, std included, frozen; the learning
    # rate reset to learning_rate afterwards): a random critic's advantages undo a warm-started actor
    critic_warmup_iterations: int = 0
    # keep the actor's observation normalizer at the warm start's statistics: PPO's rollouts (randomized, RSI,
    # mostly falling) otherwise move it and with it the regressed actor's output, actor weights frozen or not
    freeze_normalizer: bool = False
    # > 0 (with a warm start): after every PPO segment past the critic warm-up, this many regression steps of the
    # residual toward the warm start's labels on the warm start's states, so PPO keeps what it copied (it forgot
    # a demonstrated walk within 20 iterations without it); the states are collected again on resume
    anchor_steps: int = 0
    seed: int = 0
    ppo: dict = field(default_factory=lambda: {
        "num_learning_epochs": 5, "num_mini_batches": 4, "clip_param": 0.2, "gamma": 0.99, "lam": 0.95,
        "value_loss_coef": 1.0, "entropy_coef": 0.01, "max_grad_norm": 1.0, "schedule": "adaptive",
        "desired_kl": 0.01})

    def runner_cfg(self) -> dict:
        return {
            "num_steps_per_env": self.steps_per_env, "save_interval": 10 ** 9, "check_for_nan": True,
            "obs_groups": {"actor": ["teacher"], "critic": ["teacher", "privileged"]},
            "algorithm": {"class_name": "rsl_rl.algorithms:PPO", "learning_rate": self.learning_rate, **self.ppo},
            "actor": {"class_name": MoEResidualModel, "hidden_dims": list(self.actor_hidden), "activation": "elu",
                      "obs_normalization": True, "num_experts": self.num_experts,
                      "distribution_cfg": {"class_name": "rsl_rl.modules.distribution:GaussianDistribution",
                                           "init_std": self.init_std}},
            "critic": {"class_name": "rsl_rl.models:MLPModel", "hidden_dims": list(self.critic_hidden),
                       "activation": "elu", "obs_normalization": True},
        }


def seed_all(seed: int, iteration: int) -> None:
    torch.manual_seed(int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0]))


def build_runner(env, cfg: TeacherConfig) -> OnPolicyRunner:
    import contextlib
    import io

    seed_all(cfg.seed, 2 ** 31)  # the initial weights
    with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints its models and observation sets
        return OnPolicyRunner(env, cfg.runner_cfg(), log_dir=None, device="cpu")


def _modules(runner: OnPolicyRunner) -> torch.nn.ModuleDict:
    return torch.nn.ModuleDict({"actor": runner.alg.actor, "critic": runner.alg.critic})


def layout_meta(height_map: bool = False) -> dict:
    """The observation layout a teacher checkpoint records (the contract's, with the optional height-map
    slice when the env has it on)."""
    return {"teacher": g1.teacher_obs(height_map).as_json(), "privileged": g1.PRIVILEGED_OBS.as_json(),
            "joints": list(g1.POLICY_JOINTS)}


def _env_height_map(env) -> bool:
    return bool(getattr(getattr(env, "cfg_t", None), "height_map", False))


def check_layout(meta: dict, what: str, height_map: bool = False) -> None:
    if meta.get("obs_layout") != layout_meta(height_map):
        raise PolicyError(f"{what} was trained with another observation layout than this env's "
                          f"({len(meta.get('obs_layout', {}).get('teacher', []))} teacher terms); retrain it")


def train_teacher(env, cfg: TeacherConfig, out: Path, resume: bool = False, progress=None, on_segment=None,
                  cpu_budget_s: float | None = None, warm_target=None, warm_envs: tuple = ()) -> dict:
    """PPO segments with checkpoints; returns the summary (per-segment rows in history: episode statistics,
    env steps so far, wall and process CPU seconds of this call). `on_segment(actor)`, if given, returns
    more columns for the segment's row (e.g. an evaluation of the deterministic actor); it must not touch
    the env or the global generators, so a resumed run stays bit-identical. `cpu_budget_s`: stop after the
    first segment that ends with this many process CPU seconds (all threads) spent in this call.
    `warm_target(env)`: the (N, 23) residual the warm start regresses to (default: inverse-dynamics offsets);
    with a warm start, the actor PPO starts from is checkpointed as iteration 0; `warm_envs`: more envs whose
    rollouts the warm start also regresses on (warm_start's more_envs)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runner = build_runner(env, cfg)
    start, history, warm = 0, [], {}
    ckpt = latest_checkpoint(out) if resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt, _modules(runner), runner.alg.optimizer)
        check_layout(state, f"checkpoint {ckpt}", _env_height_map(env))
        runner.alg.learning_rate = runner.alg.optimizer.param_groups[0]["lr"]
        env.load_curriculum_state(state["curriculum"])
        start, history, warm = state["iteration"], state["history"], state.get("warm_start", {})
        runner.alg.actor.normalization_frozen = cfg.freeze_normalizer and bool(warm)
    demos = None
    if cfg.warm_start_steps > 0 and (ckpt is None or (cfg.anchor_steps > 0 and warm)):
        # the warm start's states and labels: deterministic (seeded rollouts from a fresh env), so a resumed run
        # collects the same ones for its anchor steps, then gets its env's curriculum back
        seed_all(cfg.seed, 2 ** 31 + 1)
        env.rng = np.random.default_rng([cfg.seed, 2 ** 31 + 1])
        demos = demonstrations(env, cfg.warm_start_rollout_steps, target=warm_target,
                               noise_std=cfg.warm_start_noise_std, more_envs=tuple(warm_envs))
        if ckpt is not None:
            env.load_curriculum_state(state["curriculum"])
    if ckpt is None and cfg.warm_start_steps > 0:
        warm = warm_start(runner.alg.actor, env, cfg.warm_start_steps, demos=demos)
        runner.alg.actor.normalization_frozen = cfg.freeze_normalizer
        if on_segment is not None:  # where PPO starts from
            warm |= _probe(runner.alg.actor, on_segment)
        save_checkpoint(out, 0, _modules(runner), runner.alg.optimizer,
                        {"iteration": 0, "curriculum": env.curriculum_state(), "history": [],
                         "obs_layout": layout_meta(_env_height_map(env)), "config": _jsonable(asdict(cfg)), "warm_start": warm})
    spent = history[-1].get("cpu_seconds", 0.0) if history else 0.0  # a resumed run's budget goes on
    t0, c0 = time.time(), time.process_time() - spent
    while start < cfg.iterations:
        if cpu_budget_s is not None and time.process_time() - c0 >= cpu_budget_s:
            break
        n = min(cfg.save_every, cfg.iterations - start)
        seed_all(cfg.seed, start)
        env.rng = np.random.default_rng([cfg.seed, start])
        env.reset(np.arange(env.num_envs))
        stats = _Collect(env)
        runner.current_learning_iteration = start
        warmup = start < cfg.critic_warmup_iterations
        if warmup:
            n = min(n, cfg.critic_warmup_iterations - start)
        for p in runner.alg.actor.parameters():
            p.requires_grad_(not warmup)
        runner.learn(n)
        start += n
        if demos is not None and cfg.anchor_steps > 0 and not warmup:
            regress(runner.alg.actor, *demos, cfg.anchor_steps, seed=start)
        if warmup and start >= cfg.critic_warmup_iterations:  # the adaptive schedule grew it on a zero KL
            for p in runner.alg.actor.parameters():
                p.requires_grad_(True)
            runner.alg.learning_rate = cfg.learning_rate
            for g in runner.alg.optimizer.param_groups:
                g["lr"] = cfg.learning_rate
        row = {"iteration": start, "env_steps": start * cfg.steps_per_env * env.num_envs, **stats.summary(),
               "seconds": round(time.time() - t0, 2), "cpu_seconds": round(time.process_time() - c0, 2)}
        stats.close()
        if on_segment is not None:
            row |= _probe(runner.alg.actor, on_segment)
        history.append(row)
        save_checkpoint(out, start, _modules(runner), runner.alg.optimizer,
                        {"iteration": start, "curriculum": env.curriculum_state(), "history": history,
                         "obs_layout": layout_meta(_env_height_map(env)), "config": _jsonable(asdict(cfg)), "warm_start": warm})
        if progress:
            progress(history[-1])
        if cpu_budget_s is not None and time.process_time() - c0 >= cpu_budget_s:
            break
    return {"iterations": start, "history": history, "checkpoint": str(latest_checkpoint(out)), "warm_start": warm}


def _probe(actor: torch.nn.Module, on_segment) -> dict:
    """on_segment(actor) in eval mode, the global torch generator restored after it."""
    was_training = actor.training
    actor.eval()
    rng_state = torch.get_rng_state()
    try:
        return on_segment(actor)
    finally:
        torch.set_rng_state(rng_state)
        actor.train(was_training)


class _Collect:
    """Episode statistics of a segment, read from the env's step results without changing them."""

    def __init__(self, env) -> None:
        self.env, self.inner = env, env.step
        self.rewards, self.lengths, self.mpkpe = [], [], []
        self.ep_ret = np.zeros(env.num_envs)

        def step(actions):
            obs, rew, done, extras = self.inner(actions)
            r, d = rew.numpy(), done.numpy()
            self.ep_ret += r
            self.mpkpe.append(float(extras["metrics"]["mpkpe_m"].mean()))
            for i in np.flatnonzero(d):
                self.rewards.append(self.ep_ret[i])
                self.lengths.append(int(env._last_len[i]))
                self.ep_ret[i] = 0.0
            return obs, rew, done, extras
        env.step = step

    def summary(self) -> dict:
        return {"episodes": len(self.lengths), "mean_episode_len": float(np.mean(self.lengths)) if self.lengths else 0.0,
                "mean_episode_reward": float(np.mean(self.rewards)) if self.rewards else 0.0,
                "mean_mpkpe_m": float(np.mean(self.mpkpe)) if self.mpkpe else 0.0}

    def close(self) -> None:
        del self.env.step


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=list))


def load_teacher(env, run_dir: Path, cfg: TeacherConfig | None = None, iteration: int | None = None) -> torch.nn.Module:
    """The trained actor (deterministic) of the latest checkpoint, or of `iteration`'s, refusing a checkpoint
    from another observation layout."""
    ckpt = latest_checkpoint(Path(run_dir)) if iteration is None else Path(run_dir) / f"{CKPT_PREFIX}{iteration:08d}"
    if ckpt is None or not ckpt.is_dir():
        raise PolicyError(f"no teacher checkpoint {'' if iteration is None else f'of iteration {iteration} '}under "
                          f"{run_dir}; run `python -m train teacher` first")
    state = json.loads((ckpt / "state.json").read_text())
    check_layout(state, f"teacher checkpoint {ckpt}", _env_height_map(env))
    c = state["config"]
    cfg = cfg or TeacherConfig(num_experts=c["num_experts"], actor_hidden=tuple(c["actor_hidden"]),
                               critic_hidden=tuple(c["critic_hidden"]))
    runner = build_runner(env, cfg)
    load_checkpoint(ckpt, _modules(runner))
    actor = runner.alg.actor
    actor.eval()
    return actor


# ------------------------------------------------------------------------------------------------
# Warm start (reported as such by its callers): the residual learns, by regression, the PD offsets that
# make the reference's own joint torques. An untrained residual teacher replays the reference through the
# PD, whose steady-state error under gravity makes the G1 sag and fall (~1.2 s on a standing clip); the
# torques come from inverse dynamics of the reference motion, with the contact wrench at the feet in
# contact chosen (least squares, smallest norm) to balance the floating base.

def inverse_dynamics_torques(library, model) -> np.ndarray:
    """(F, 23) joint torques [N m] of every library frame: tau = (M qacc + c - J_c^T w)[joints], with w the
    smallest feet wrench that makes the floating base's six rows zero (feet in contact per the clip's labels,
    both feet when none is labelled)."""
    import mujoco

    from train.env.actuation import ModelIndex
    from train.env.observations import to_body

    ix = ModelIndex.of(model)
    d = mujoco.MjData(model)
    a = library.arrays
    dt = 1.0 / g1.POLICY_HZ
    rot = _quat_matrix(a["root_quat"])
    qvel = np.zeros((len(rot), model.nv))
    qvel[:, :3] = a["root_lin_vel"]
    qvel[:, 3:6] = to_body(rot, a["root_ang_vel"])
    qvel[:, ix.dof_adr] = a["joint_vel"]
    qacc = np.zeros_like(qvel)
    for s, n in zip(library.starts, library.lengths, strict=True):
        qacc[s:s + n] = np.gradient(qvel[s:s + n], dt, axis=0) if n > 1 else 0.0
    out = np.zeros((len(rot), g1.N_ACT))
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    rne = np.zeros(model.nv)
    for f in range(len(rot)):
        d.qpos[:3], d.qpos[3:7] = a["root_pos"][f], a["root_quat"][f]
        d.qpos[ix.qpos_adr] = a["joint_pos"][f]
        d.qvel[:] = qvel[f]
        d.qacc[:] = qacc[f]
        mujoco.mj_kinematics(model, d)
        mujoco.mj_comPos(model, d)
        mujoco.mj_comVel(model, d)
        mujoco.mj_crb(model, d)
        mujoco.mj_rne(model, d, 1, rne)
        feet = [k for k in range(2) if a["contact"][f, k] > 0.5] or [0, 1]
        cols = []
        for k in feet:
            mujoco.mj_jacBody(model, d, jacp, jacr, int(ix.foot_body[k]))
            cols += [jacp.copy(), jacr.copy()]
        jt = np.concatenate(cols).T  # (nv, 6 * feet)
        w = np.linalg.lstsq(jt[:6], rne[:6], rcond=None)[0]
        out[f] = (rne - jt @ w)[ix.dof_adr]
    return out


def inverse_dynamics_offsets(library, model) -> np.ndarray:
    """(F, 23) the PD offsets [action units] that make the reference's inverse-dynamics torques."""
    tau = inverse_dynamics_torques(library, model)
    return (tau + g1.KD * library.arrays["joint_vel"]) / g1.KP / g1.ACTION_SCALE


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    from robomirror.rotations import quat_wxyz_to_matrix

    return quat_wxyz_to_matrix(q)


def warm_start(actor: MoEResidualModel, env, steps: int, rollout_steps: int = 100, learning_rate: float = 1e-3,
               batch: int = 256, target=None, noise_std: float = 0.0, more_envs: tuple = (),
               demos: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Regress the actor's residual to the action offset (tau + kd qd) / kp / scale that makes the PD produce
    the next reference frame's inverse-dynamics torque, or to `target(env)` (e.g. train.balance_prior's). The states are those the feed-forward policy
    (reference + that offset, looked up by clip and frame) visits in the env itself, from Reference State
    Initialization, so the proprioception (last actions included) is what the actor will see; the
    observation normalizer is updated on them first. `more_envs`: envs on the same library whose rollouts
    are added to `env`'s (e.g. the evaluation setup from every clip's first frame, where a demonstrator planned
    from that frame leads). Returns the regression's first and last loss (mean squared action units) and the
    sample count. `demos`: the (states, labels) of `demonstrations`, already collected."""
    obs, y = demos if demos is not None else demonstrations(env, rollout_steps, target, noise_std, more_envs)
    actor.update_normalization(obs)
    losses = regress(actor, obs, y, steps, learning_rate, batch)
    return {"warm_start_samples": len(y), "warm_start_steps": steps, "warm_start_loss_first": losses[0],
            "warm_start_loss_last": float(np.mean(losses[-20:])),
            "warm_start_label_rms": float(torch.sqrt(torch.mean(y ** 2)))}


def demonstrations(env, rollout_steps: int = 100, target=None, noise_std: float = 0.0,
                   more_envs: tuple = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """The warm start's (observations, residual labels): `rollout_steps` steps of every world of `env` and of
    `more_envs`, each reset first, acting with the label plus `noise_std` action noise (labels clean)."""
    if target is None:
        lib = env.library
        offset = inverse_dynamics_offsets(lib, env.model)

        def target(env) -> np.ndarray:
            idx = lib.starts[env.clip] + np.clip(env.frame + 1, 0, lib.lengths[env.clip] - 1)
            return offset[idx]

    xs, ys = [], []
    for e in (env, *more_envs):
        e.reset(np.arange(e.num_envs))
        obs = e.get_observations()
        for _ in range(rollout_steps):
            y = torch.as_tensor(target(e), dtype=torch.float32)
            xs.append(obs)
            ys.append(y)
            # noise_std > 0: the rollouts are perturbed (labels are not), so the regression also sees the states
            # a perturbed policy reaches and learns the way back (DART); a student's own mistakes land there
            noise = noise_std * torch.randn(y.shape) if noise_std > 0 else 0.0
            obs, *_ = e.step(obs["residual_base"] + y + noise)
    return torch.cat(xs), torch.cat(ys)


def regress(actor: MoEResidualModel, obs: torch.Tensor, y: torch.Tensor, steps: int, learning_rate: float = 1e-3,
            batch: int = 256, seed: int = 0) -> list[float]:
    """`steps` Adam steps (a fresh optimizer; minibatches drawn from a generator seeded by `seed`) of the actor's
    residual toward the labels `y`, through its normalizer as it stands; returns the losses."""
    opt = torch.optim.Adam(actor.mlp.parameters(), lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(y), (min(batch, len(y)),), generator=gen)
        loss = torch.mean((actor.mlp(actor.get_latent(obs[idx])) - y[idx]) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
