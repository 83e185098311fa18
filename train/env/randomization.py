"""Domain randomization of the paper's Table 9, sampled per env at reset.

The worlds step in one `mujoco.batch.Batch`: each randomized model field is expanded to one value per
world (`Batch.expand`; the 70 MB of meshes stay shared, a full MjModel per world would copy them),
and `apply` writes the sampled parameters of the reset worlds into their own rows, so one process
steps many differently randomized G1s with no model writes in the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import mujoco.batch
import numpy as np

from robomirror import g1_contract as g1
from robomirror.g1_shaping import motor_gains
from train.env.actuation import ModelIndex


@dataclass(frozen=True)
class RandomizationConfig:
    enabled: bool = True
    friction: tuple[float, float] = (0.2, 1.5)
    pd_gain_scale: tuple[float, float] = (0.75, 1.25)
    link_mass_scale: tuple[float, float] = (0.9, 1.1)
    ankle_inertia_scale: tuple[float, float] = (0.9, 1.1)
    com_offset_m: float = 0.05
    erfi_fraction: float = 0.05  # random joint torque, fraction of each effort limit, per policy step
    control_delay_s: tuple[float, float] = (0.0, 0.040)
    push_interval_s: tuple[float, float] = (5.0, 10.0)
    push_velocity_m_s: float = 0.5


NOMINAL = RandomizationConfig(enabled=False)


class PhysicsParams:
    """Per-env randomized parameters, and the nominal values of the model they scale."""

    def __init__(self, model: mujoco.MjModel, ix: ModelIndex, n_envs: int, physics_dt_s: float) -> None:
        self.m, self.ix, self.dt = model, ix, physics_dt_s
        self.foot_geoms = np.array(sorted(ix.foot_geoms[0] | ix.foot_geoms[1]))
        self.ankle_bodies = np.unique(model.jnt_bodyid[[model.dof_jntid[d] for d in ix.ankle_dof]])
        self.nominal_mass = model.body_mass[ix.mass_body].copy()
        self.nominal_inertia = model.body_inertia[self.ankle_bodies].copy()
        self.nominal_ipos = model.body_ipos[1].copy()  # the pelvis (base)
        self.nominal_friction = model.geom_friction[self.foot_geoms, 0].copy()
        self.friction = np.full(n_envs, float(self.nominal_friction[0]))
        self.kp_scale = np.ones((n_envs, g1.N_ACT))
        self.kd_scale = np.ones((n_envs, g1.N_ACT))
        self.mass_scale = np.ones((n_envs, len(ix.mass_body)))
        self.inertia_scale = np.ones(n_envs)
        self.com_offset = np.zeros((n_envs, 3))
        self.delay_steps = np.zeros(n_envs, dtype=int)

    def sample(self, ids: np.ndarray, cfg: RandomizationConfig, rng: np.random.Generator) -> None:
        if not cfg.enabled:
            return
        n = len(ids)
        u = lambda r, shape=(): rng.uniform(r[0], r[1], size=(n,) + shape)  # noqa: E731
        self.friction[ids] = u(cfg.friction)
        self.kp_scale[ids] = u(cfg.pd_gain_scale, (g1.N_ACT,))
        self.kd_scale[ids] = u(cfg.pd_gain_scale, (g1.N_ACT,))
        self.mass_scale[ids] = u(cfg.link_mass_scale, (self.mass_scale.shape[1],))
        self.inertia_scale[ids] = u(cfg.ankle_inertia_scale)
        self.com_offset[ids] = rng.uniform(-cfg.com_offset_m, cfg.com_offset_m, size=(n, 3))
        delay_s = u(cfg.control_delay_s)
        self.delay_steps[ids] = np.rint(delay_s / self.dt).astype(int)

    def apply(self, batch: mujoco.batch.Batch, ids: np.ndarray, explicit_pd: bool) -> None:
        """Write the worlds' parameters into their rows of the batch's per-world model fields
        (same arithmetic as writing them into one shared model, so the same bits)."""
        ids = np.asarray(ids, dtype=int)
        if not len(ids):
            return
        ix, col = self.ix, ids[:, None]
        batch.expand("geom_friction")[col, self.foot_geoms[None, :], 0] = self.friction[ids][:, None]
        batch.expand("body_mass")[col, ix.mass_body[None, :]] = self.nominal_mass * self.mass_scale[ids]
        batch.expand("body_inertia")[col, self.ankle_bodies[None, :]] = (
            self.nominal_inertia * self.inertia_scale[ids][:, None, None])
        batch.expand("body_ipos")[ids, 1] = self.nominal_ipos + self.com_offset[ids]
        if not explicit_pd:  # the policy joints' actuators come first; the held wrists keep their nominal gains
            kp, kd = g1.KP * self.kp_scale[ids], g1.KD * self.kd_scale[ids]
            batch.expand("actuator_gainprm")[ids, :g1.N_ACT, 0] = kp
            batch.expand("actuator_biasprm")[ids, :g1.N_ACT, 1] = -kp
            batch.expand("actuator_biasprm")[ids, :g1.N_ACT, 2] = -kd

    def gains(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 29) kp, kd of every world in motor order: randomized on the policy joints, the wrists' own."""
        return motor_gains(g1.KP * self.kp_scale, g1.KD * self.kd_scale)

    def vector(self) -> np.ndarray:
        """(N, 73) for the critic: CoM offset, link mass scales, kp/kd scales, friction, delay [s]."""
        return np.concatenate([self.com_offset, self.mass_scale, self.kp_scale, self.kd_scale,
                               self.friction[:, None], (self.delay_steps * self.dt)[:, None]], -1)


def erfi_torque(rng: np.random.Generator, n: int, cfg: RandomizationConfig) -> np.ndarray:
    """Random force injection (ERFI): a joint torque per env, uniform within a fraction of the limits."""
    if not cfg.enabled:
        return np.zeros((n, g1.N_ACT))
    return rng.uniform(-1, 1, size=(n, g1.N_ACT)) * cfg.erfi_fraction * g1.EFFORT_LIMIT_NM


def push_velocity(rng: np.random.Generator, n: int, cfg: RandomizationConfig) -> np.ndarray:
    """A horizontal root velocity kick [m/s] of at most push_velocity_m_s, in a random direction."""
    ang = rng.uniform(0, 2 * np.pi, n)
    mag = rng.uniform(0, cfg.push_velocity_m_s, n)
    return np.stack([mag * np.cos(ang), mag * np.sin(ang), np.zeros(n)], -1)
