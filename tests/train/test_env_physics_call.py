"""The env's one world-major physics call per policy step gives the same bits as one step call per substep."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from train.env.actuation import MOTOR_TO_ACTUATOR
from train.env.randomization import NOMINAL, RandomizationConfig
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv


def _per_substep(env: TrackingEnv) -> None:
    """The reference: the delay line's target written and one batch step called per substep."""
    dec, rows = env.sim.decimation, np.arange(env.num_envs)
    env.qfrc_applied[:, env.ix.dof_adr] = env.erfi
    lag = env.params.delay_steps[:, None] - np.arange(dec)[None, :]
    slot = np.where(lag <= 0, 0, np.where(lag <= dec, 1, 2))
    for s in range(dec):
        env.ctrl[:, MOTOR_TO_ACTUATOR] = env.targets[rows, slot[:, s]]
        env.batch.step(nstep=1, stage=mujoco.mjtStage.mjSTAGE_VEL)


def _trace(env: TrackingEnv, steps: int) -> list[np.ndarray]:
    obs, out = env.get_observations(), []
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        obs, rew, done, _ = env.step(obs["residual_base"] + 0.1 * torch.randn(env.num_envs, 23, generator=gen))
        out += [env.qpos.copy(), env.qvel.copy(), env.xpos.copy(), env.geom_xmat.copy(), env.actuator_force.copy(),
                env.cfrc_ext.copy(), obs["student"].numpy(), obs["privileged"].numpy(), rew.numpy(), done.numpy()]
    return out


@pytest.mark.parametrize("rand", [NOMINAL, RandomizationConfig()], ids=["nominal", "train"])
def test_one_rollout_per_policy_step_is_bit_identical_to_a_step_per_substep(rand):
    cfg = EnvConfig(num_envs=6, seed=3, randomization=rand, max_episode_s=0.3)  # resets every 15 steps
    fast = TrackingEnv(library(2, seconds=1.0), cfg)
    ref = TrackingEnv(library(2, seconds=1.0), cfg)
    ref._physics = lambda: _per_substep(ref)
    assert not fast.sim.explicit_pd and ref.params.delay_steps.any() == rand.enabled
    a, b = _trace(fast, 40), _trace(ref, 40)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], a[-10])  # the worlds moved
