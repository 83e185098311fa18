"""The learnable path of `python -m train.policy_learn`: mjlab's tracking rewards and terminations on
constructed states, the inverse-dynamics warm start (its regression measurably learns, in seconds), and the CPU budget."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robomirror import g1_contract as g1
from tests.train.test_policy_env import state_from_reference
from train.env import rewards, terminations
from train.env.actuation import SIMS, ModelIndex, build_model
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv
from train.teacher import TeacherConfig, build_runner, inverse_dynamics_torques, train_teacher, warm_start

TINY = TeacherConfig(iterations=2, save_every=1, steps_per_env=8, num_experts=2, actor_hidden=(32, 16),
                     critic_hidden=(32, 16))


@pytest.fixture(scope="module")
def lib():
    return library(2, seconds=2.0)


def _state(lib, frames=(10, 20)):
    ref = lib.frame(np.array([0, 1]), np.array(frames))
    ref["kp_rot"] = ref["kp_rot"].copy()
    return ref, state_from_reference(ref, 2)


def test_mjlab_reward_is_its_maximum_on_the_reference_and_falls_with_a_known_error(lib):
    ref, s = _state(lib)
    e = rewards.mjlab_errors(s, ref)
    assert all(np.allclose(v, 0.0, atol=1e-9) for v in e.values())
    jr = ModelIndex.of(build_model(SIMS["train"])).joint_range
    zero = np.zeros((2, 23))
    total, _ = rewards.mjlab_reward(e, s, zero, zero, jr)
    assert np.allclose(total, rewards.MJLAB_MAX_TASK_REWARD)
    s.kp_pos_w = s.kp_pos_w + np.array([0.0, 0.0, -0.1])  # the whole body 10 cm low
    e = rewards.mjlab_errors(s, ref)
    assert np.allclose(e["anchor_pos"], 0.01)
    assert np.allclose(e["body_pos"], 0.01)  # the reference bodies are carried at the reference anchor's height
    _, terms = rewards.mjlab_reward(e, s, zero, np.ones((2, 23)), jr)
    assert np.allclose(terms["anchor_pos"], 0.5 * np.exp(-0.01 / 0.09))
    assert np.allclose(terms["action_rate"], -0.1 * 23)


def test_mjlab_body_position_error_ignores_heading_and_horizontal_offset(lib):
    ref, s = _state(lib)
    yaw = 0.7
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    a = rewards.ANCHOR_KEYPOINT
    pivot = ref["kp_pos"][:, a:a + 1]
    s.kp_pos_w = np.einsum("ij,nkj->nki", rz, ref["kp_pos"] - pivot) + pivot + np.array([0.3, -0.2, 0.0])
    s.kp_rot_w = rz @ ref["kp_rot"]
    e = rewards.mjlab_errors(s, ref)
    assert np.allclose(e["body_pos"], 0.0, atol=1e-9) and np.allclose(e["body_ori"], 0.0, atol=1e-9)
    assert np.all(e["anchor_pos"] > 0.1) and np.allclose(e["anchor_ori"], yaw ** 2)


def test_mjlab_terminations_fire_on_their_thresholds_only(lib):
    ref, s = _state(lib)
    a = terminations.ANCHOR_KEYPOINT
    t = terminations.mjlab_terminated(s.kp_pos_w, ref["kp_pos"], s.kp_rot[:, a], ref["kp_rot"][:, a])
    assert not any(v.any() for v in t.values())
    kp = s.kp_pos_w.copy()
    kp[0, :, 2] -= 0.3  # world 0 sinks 30 cm; world 1 moves a hand 20 cm down (under the 25 cm threshold)
    kp[1, 25, 2] -= 0.2
    t = terminations.mjlab_terminated(kp, ref["kp_pos"], s.kp_rot[:, a], ref["kp_rot"][:, a])
    assert t["anchor_z"].tolist() == [True, False] and t["end_effector_z"].tolist() == [True, False]
    tilted = s.kp_rot[:, a].copy()
    tilted[1] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]) @ tilted[1]  # 90 deg roll: gravity's z 1 -> 0
    t = terminations.mjlab_terminated(s.kp_pos_w, ref["kp_pos"], tilted, ref["kp_rot"][:, a])
    assert t["anchor_ori"].tolist() == [False, True]


def test_evaluation_keeps_the_succ_criteria_whatever_the_training_terminations():
    cfg = EnvConfig(reward="mjlab", terminations="mjlab").evaluation("sim2sim")
    assert cfg.terminations == "paper" and cfg.reward == "mjlab"
    with pytest.raises(ValueError, match="'paper' or 'mjlab'"):
        EnvConfig(reward="beyondmimic")


def test_inverse_dynamics_of_a_stand_holds_the_weight_on_the_feet(lib):
    m = build_model(SIMS["train"])
    tau = inverse_dynamics_torques(lib, m)
    assert tau.shape == (lib.arrays["joint_pos"].shape[0], g1.N_ACT) and np.all(np.isfinite(tau))
    knee = [g1.POLICY_JOINTS.index(j) for j in ("left_knee_joint", "right_knee_joint")]
    ankle = [g1.POLICY_JOINTS.index(j) for j in ("left_ankle_pitch_joint", "right_ankle_pitch_joint")]
    # a bent-knee stand loads the knees and ankles (tens of N m), symmetric between the legs
    assert np.all(np.abs(tau[:, knee]).mean(0) > 1.0) and np.all(np.abs(tau[:, ankle]).mean(0) > 0.5)
    assert np.allclose(tau[:, knee[0]].mean(), tau[:, knee[1]].mean(), rtol=0.2)


def test_the_warm_start_fits_the_inverse_dynamics_offsets(lib):
    env = TrackingEnv(lib, EnvConfig(num_envs=8, seed=0, reward="mjlab", terminations="mjlab"))
    actor = build_runner(env, TINY).alg.actor
    out = warm_start(actor, env, steps=150, rollout_steps=20)
    assert out["warm_start_samples"] == 160
    assert out["warm_start_loss_last"] < 0.2 * out["warm_start_loss_first"]


def test_a_tiny_mjlab_run_stops_at_its_cpu_budget(lib, tmp_path):
    """PPO on the mjlab set runs under a budget of CPU seconds that stops it, each row reports env steps and
    CPU seconds, and the per-segment hook sees the actor in eval mode."""
    env = TrackingEnv(lib, EnvConfig(num_envs=8, seed=0, reward="mjlab", terminations="mjlab"))
    cfg = dataclasses.replace(TINY, iterations=1000, save_every=2)
    seen = []
    s = train_teacher(env, cfg, tmp_path, cpu_budget_s=0.5, on_segment=lambda actor: seen.append(actor.training) or
                      {"probe": 1.0})
    h = s["history"]
    assert 1 <= len(h) < 500 and h[-1]["cpu_seconds"] >= 0.5 and seen and not any(seen)
    assert h[-1]["env_steps"] == h[-1]["iteration"] * 8 * 8 and h[-1]["probe"] == 1.0
