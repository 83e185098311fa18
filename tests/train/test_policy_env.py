"""Every reward, termination, curriculum and randomization term on constructed states."""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import pytest
import torch

from robomirror import g1_contract as g1
from train.env import curriculum, rewards, terminations
from train.env.actuation import MOTOR_TO_ACTUATOR, SIMS, ModelIndex, build_model
from train.env.motion_library import MotionError, MotionLibrary
from train.env.observations import RobotState
from train.env.randomization import RandomizationConfig
from train.env.synthetic import library, sway_clip
from train.env.tracking_env import EnvConfig, TrackingEnv


def state_from_reference(ref: dict, n: int) -> RobotState:
    return RobotState(ref["joint_pos"].copy(), ref["joint_vel"].copy(), ref["root_pos"].copy(), ref["root_quat"].copy(),
                      ref["root_lin_vel"].copy(), np.zeros((n, 3)), ref["kp_pos"].copy(), ref["kp_quat"].copy(),
                      ref["kp_lin_vel"].copy(), ref["kp_ang_vel"].copy(), np.tile([0.0, 0.0, 200.0], (n, 2, 1)),
                      np.zeros(n, dtype=bool), np.zeros((n, 23)))


@pytest.fixture(scope="module")
def lib():
    return library(2)


def test_perfect_tracking_earns_the_maximum_task_reward_and_no_penalty(lib):
    ref = lib.frame(np.array([0, 1]), np.array([10, 20]))
    s = state_from_reference(ref, 2)
    errors = rewards.tracking_errors(s, ref)
    assert all(np.allclose(e, 0.0, atol=1e-9) for e in errors.values())
    zero = np.zeros((2, 23))
    pens = rewards.penalties(s, zero, zero, np.zeros((2, 2)), ModelIndex.of(build_model(SIMS["train"])).joint_range)
    total, terms = rewards.total_reward(errors, dict(rewards.INITIAL_SIGMA), rewards.foot_contact(s).astype(float),
                                        ref["contact"], pens, 1.0, np.zeros(2, dtype=bool))
    assert np.allclose(total, rewards.MAX_TASK_REWARD)
    assert all(np.allclose(terms[k], 0) for k in rewards.PENALTY_WEIGHTS)


def test_a_known_joint_error_gives_the_known_reward(lib):
    ref = lib.frame(np.array([0]), np.array([5]))
    s = state_from_reference(ref, 1)
    s.joint_pos[0, 3] += 0.1
    e = rewards.tracking_errors(s, ref)
    assert np.isclose(e["joint_pos"][0], 0.01) and np.isclose(e["max_joint_pos"][0], 0.1)
    sigma = dict(rewards.INITIAL_SIGMA)
    _, terms = rewards.total_reward(e, sigma, np.ones((1, 2)), ref["contact"], {}, 1.0, np.zeros(1, dtype=bool))
    assert np.isclose(terms["joint_pos"][0], np.exp(-0.01 / 0.3))
    assert np.isclose(terms["max_joint_pos"][0], np.exp(-0.1 / 1.0))


def test_penalties_fire_on_their_limits():
    lo, hi = rewards.soft_limits(np.array([-1.0]), np.array([3.0]))
    assert np.isclose(lo[0], 1 - 2 * 0.95) and np.isclose(hi[0], 1 + 2 * 0.95)
    n = 1
    s = RobotState(np.zeros((n, 23)), np.zeros((n, 23)), np.zeros((n, 3)), np.array([[1.0, 0, 0, 0]]), np.zeros((n, 3)),
                   np.zeros((n, 3)), np.zeros((n, 27, 3)), np.tile([1.0, 0, 0, 0], (n, 27, 1)), np.zeros((n, 27, 3)),
                   np.zeros((n, 27, 3)), np.array([[[0, 0, 500.0], [10.0, 0, 1.0]]]), np.array([True]),
                   np.zeros((n, 23)))
    s.torque[0, 0] = g1.EFFORT_LIMIT_NM[0] * 0.96
    s.joint_vel[0, 1] = g1.VELOCITY_LIMIT_RAD_S[1] * 0.96
    rng = np.tile([[-3.0, 3.0]], (23, 1))
    rng[2] = [0.5, 1.0]  # joint 2 at 0 is outside
    p = rewards.penalties(s, np.ones((1, 23)), np.zeros((1, 23)), np.array([[0.31, 0.0]]), rng)
    assert p["joint_pos_limit"][0] == 1 and p["joint_vel_limit"][0] == 1 and p["torque_limit"][0] == 1
    assert np.isclose(p["foot_force"][0], 100.0) and p["stumble"][0] == 1 and p["air_time"][0] == 1
    assert p["collision"][0] == 1 and np.isclose(p["action_rate"][0], 23.0)


def test_adaptive_sigma_only_tightens_towards_the_error_average():
    a = rewards.AdaptiveSigma()
    for _ in range(5000):
        a.update({"joint_pos": np.array([0.01])})
    assert 0.01 < a.sigma["joint_pos"] < 0.3 and a.sigma["joint_pos"] == min(a.sigma["joint_pos"], a.ema["joint_pos"])
    before = a.sigma["joint_pos"]
    a.update({"joint_pos": np.array([100.0])})
    assert a.sigma["joint_pos"] == before


def test_terminations_fire_at_their_thresholds():
    ref = np.zeros((2, 27, 3))
    kp = ref.copy()
    kp[0, :, 0], kp[1, :, 0] = 0.49, 0.51
    q = np.array([[1.0, 0, 0, 0]] * 2)
    t = terminations.terminated(kp, ref, q, q, theta_m=0.5)
    assert list(t["deviation"]) == [False, True] and not t["tilt"].any()
    tilt = np.array([[np.cos(0.99 / 2), np.sin(0.99 / 2), 0, 0], [np.cos(1.01 / 2), np.sin(1.01 / 2), 0, 0]])
    assert list(terminations.terminated(ref, ref, tilt, q, 0.5)["tilt"]) == [False, True]


def test_curricula_follow_the_paper_update_and_bounds():
    c = curriculum.TerminationCurriculum()
    for _ in range(1000):
        c.step()
    assert np.isclose(c.theta, 1.5 * (1 - 2.5e-5) ** 1000)
    c = curriculum.TerminationCurriculum(theta=0.31)
    for _ in range(10 ** 5 // 10):
        c.step()
    assert c.theta >= 0.3
    p = curriculum.PenaltyCurriculum(alpha=0.99)
    for _ in range(1000):
        p.step()
    assert p.alpha == 1.0


def test_rsi_samples_phases_uniformly_and_sets_the_robot_to_the_reference(lib):
    env = TrackingEnv(lib, EnvConfig(num_envs=64, seed=1))
    frames = []
    for _ in range(8):
        env.reset(np.arange(64))
        frames.append(env.frame / (lib.lengths[env.clip] - 2))
        ref = lib.frame(env.clip, env.frame)
        assert np.allclose(env.state.joint_pos, ref["joint_pos"], atol=1e-9)
    f = np.concatenate(frames)
    assert abs(f.mean() - 0.5) < 0.05 and f.min() < 0.05 and f.max() > 0.95
    hist = np.histogram(f, bins=4, range=(0, 1))[0]
    assert hist.min() > 0.15 * len(f)


def test_randomization_stays_in_its_ranges_and_is_off_in_evaluation(lib):
    cfg = RandomizationConfig()
    env = TrackingEnv(lib, EnvConfig(num_envs=128, seed=2))
    p = env.params
    assert p.friction.min() >= 0.2 and p.friction.max() <= 1.5 and p.friction.std() > 0.2
    for arr, (lo, hi) in ((p.kp_scale, cfg.pd_gain_scale), (p.kd_scale, cfg.pd_gain_scale),
                          (p.mass_scale, cfg.link_mass_scale), (p.inertia_scale, cfg.ankle_inertia_scale)):
        assert arr.min() >= lo and arr.max() <= hi and arr.std() > 0
    assert np.abs(p.com_offset).max() <= 0.05 and p.delay_steps.min() >= 0 and p.delay_steps.max() <= 8
    ev = TrackingEnv(lib, EnvConfig(num_envs=4).evaluation())
    assert np.all(ev.params.kp_scale == 1) and np.all(ev.params.delay_steps == 0)
    assert ev.params.vector().shape == (4, 73)


def test_observations_have_the_contract_shapes_and_replaying_the_reference_tracks_it(lib):
    env = TrackingEnv(lib, dataclasses.replace(EnvConfig(num_envs=4, seed=0).evaluation()))
    env.reset(np.arange(4), clips=np.array([0, 1, 0, 1]), frames=np.zeros(4, dtype=int))
    obs = env.get_observations()
    assert {k: v.shape[-1] for k, v in obs.items()} == {"teacher": 489, "privileged": 250, "student": 2206,
                                                       "residual_base": 23}
    assert torch.allclose(obs["student"][:, :256], torch.from_numpy(lib.latents[env.clip]))
    for _ in range(30):
        obs, rew, done, extras = env.step(obs["residual_base"])
    assert not done.any() and extras["metrics"]["mpkpe_m"].max() < 0.1


def test_a_motion_with_nan_or_unknown_joints_is_refused_at_load():
    bad = sway_clip()
    bad.motion.joint_pos[3, 2] = np.nan
    with pytest.raises(MotionError, match="NaN"):
        MotionLibrary([bad], build_model(SIMS["train"]))
    other = sway_clip()
    other.motion.joint_names = tuple(f"joint_{i}" for i in range(23))
    with pytest.raises(MotionError, match="policy joints"):
        MotionLibrary([other], build_model(SIMS["train"]))


def test_each_world_steps_on_its_own_randomized_physics_bit_for_bit(lib):
    """The batch's world i equals one MjData stepped on a model holding world i's sampled parameters."""
    env = TrackingEnv(lib, EnvConfig(num_envs=3, seed=3))
    obs, *_ = env.step(env.get_observations()["residual_base"])  # a warm start and a non-trivial delay line
    before = [env.batch.get_data(i) for i in range(3)]
    seen: dict[str, np.ndarray] = {}
    inner = env._physics

    def physics() -> None:
        seen["targets"], seen["erfi"] = env.targets.copy(), env.erfi.copy()
        inner()
        seen["qpos"] = env.qpos.copy()

    env._physics = physics
    env.step(obs["residual_base"] + 0.05)
    m, p, ix, dec = build_model(SIMS["train"]), env.params, env.ix, env.sim.decimation
    assert len(np.unique(p.friction)) == 3 and len(np.unique(p.delay_steps)) > 1
    for i, d in enumerate(before):  # the parameters written into one shared model, as the env did before
        m.geom_friction[p.foot_geoms, 0] = p.friction[i]
        m.body_mass[ix.mass_body] = p.nominal_mass * p.mass_scale[i]
        m.body_inertia[p.ankle_bodies] = p.nominal_inertia * p.inertia_scale[i]
        m.body_ipos[1] = p.nominal_ipos + p.com_offset[i]
        kp, kd = g1.KP * p.kp_scale[i], g1.KD * p.kd_scale[i]
        m.actuator_gainprm[:23, 0], m.actuator_biasprm[:23, 1], m.actuator_biasprm[:23, 2] = kp, -kp, -kd
        d.qfrc_applied[ix.dof_adr] = seen["erfi"][i]
        for s in range(dec):
            lag = p.delay_steps[i] - s
            d.ctrl[MOTOR_TO_ACTUATOR] = seen["targets"][i, 0 if lag <= 0 else (1 if lag <= dec else 2)]
            mujoco.mj_step(m, d)
        assert np.array_equal(d.qpos, seen["qpos"][i]), f"world {i}"


def test_the_trajectories_do_not_depend_on_the_thread_count(lib):
    runs = []
    for threads in (1, 2):
        env = TrackingEnv(lib, EnvConfig(num_envs=5, seed=4, threads=threads))
        obs, gen, qpos = env.get_observations(), torch.Generator().manual_seed(0), []
        for _ in range(6):
            obs, *_ = env.step(obs["residual_base"] + 0.1 * torch.randn(5, 23, generator=gen))
            qpos.append(env.qpos.copy())
        runs.append(np.stack(qpos))
    assert np.array_equal(runs[0], runs[1])
