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


# ------------------------------------------------------------------------------ the balance prior (CEM)
def _tilted(ref, angle: float, axis: int):
    """A state equal to the reference but for its root pitched (axis 1) or rolled (axis 0) by `angle` rad."""
    from robomirror.rotations import quat_wxyz_to_matrix

    s = state_from_reference(ref, len(ref["root_quat"]))
    c, sn = np.cos(angle), np.sin(angle)
    r = np.eye(3)
    i, j = [k for k in range(3) if k != axis][:2]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -sn if axis != 1 else sn, sn if axis != 1 else -sn, c
    s.root_rot_w = r[None] @ quat_wxyz_to_matrix(ref["root_quat"])
    return s


def test_the_prior_sees_no_error_on_the_reference_and_a_pitch_as_a_pitch(lib):
    from train.balance_prior import ANKLE_PITCH, ANKLE_ROLL, HIP_PITCH, HIP_ROLL, errors, feedback

    ref, s = _state(lib)
    assert np.allclose(errors(s, ref), 0.0, atol=1e-9)
    e = errors(_tilted(ref, 0.1, axis=1), ref)
    assert np.allclose(e[:, 0], 0.1, atol=1e-6) and np.allclose(e[:, 4], 0.0, atol=1e-6)  # pitch, not roll
    e = errors(_tilted(ref, 0.1, axis=0), ref)
    assert np.allclose(np.abs(e[:, 4]), 0.1, atol=1e-6) and np.allclose(e[:, 0], 0.0, atol=1e-6)
    gains = np.arange(1.0, 13.0)
    err = np.array([[1.0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 2.0]])
    out = feedback(gains, err)
    assert np.allclose(out[0, ANKLE_PITCH], 1.0) and np.allclose(out[0, HIP_PITCH], 5.0)  # k0, k4 on pitch
    assert np.allclose(out[1, ANKLE_ROLL], 2.0 * 10) and np.allclose(out[1, HIP_ROLL], 0.0)  # k9 on dvy
    touched = np.r_[ANKLE_PITCH, HIP_PITCH, ANKLE_ROLL, HIP_ROLL]
    assert np.count_nonzero(np.delete(out, touched, axis=1)) == 0  # nothing else moves


def test_cem_is_deterministic_and_never_loses_its_incumbent(lib):
    from train.balance_prior import N_GAINS, id_offsets, rollout_scores, tune_gains

    sub = lib.subset([0])
    model = build_model(SIMS["train"])
    a = tune_gains(sub, model, generations=2, population=4, elite=2, seed=3)
    b = tune_gains(sub, model, generations=2, population=4, elite=2, seed=3)
    assert a["gains"] == b["gains"] and a["score"] == b["score"]
    best = [h["best"] for h in a["history"]]
    assert best == sorted(best)  # the incumbent is re-scored every generation
    zero = rollout_scores(sub, np.zeros((1, N_GAINS)), id_offsets(sub, model)).mean()
    assert a["score"] >= zero - 1e-12  # generation 0 scores the zero gains (the ID offsets alone) too
    again = rollout_scores(sub, np.array([a["gains"]]), id_offsets(sub, model)).mean()
    assert again == pytest.approx(a["score"], abs=1e-12)  # the score is a deterministic rollout


def test_the_warm_start_regresses_to_a_given_target(lib):
    env = TrackingEnv(lib, EnvConfig(num_envs=8, seed=0, reward="mjlab", terminations="mjlab"))
    actor = build_runner(env, TINY).alg.actor
    target = lambda e: np.tile(np.linspace(-0.3, 0.3, 23), (e.num_envs, 1)) + 0.1 * e.state.root_pos_w[:, :1]  # noqa: E731
    out = warm_start(actor, env, steps=200, rollout_steps=10, target=target)
    assert out["warm_start_label_rms"] == pytest.approx(np.sqrt(np.mean(target(env) ** 2)), rel=0.05)
    assert out["warm_start_loss_last"] < 0.1 * out["warm_start_loss_first"]


def test_the_teacher_kept_is_the_best_evaluated_checkpoint_the_warm_start_included():
    from train.policy_learn import select_teacher

    row = lambda it, ss, st, m: {"iteration": it, "eval_stand_succ": ss, "eval_walk_succ": 0.0,  # noqa: E731
                                 "eval_stand_steps": st, "eval_walk_steps": 30.0, "eval_stand_mpkpe_m": m,
                                 "eval_walk_mpkpe_m": 0.2}
    warm = {k: v for k, v in row(0, 1.0, 138.0, 0.04).items() if k != "iteration"}
    drift = [row(20, 0.0, 61.0, 0.14), row(40, 0.0, 90.0, 0.12)]
    assert select_teacher({"history": drift, "warm_start": warm, "iterations": 40})["iteration"] == 0
    better = drift + [row(60, 1.0, 138.0, 0.03)]
    sel = select_teacher({"history": better, "warm_start": warm, "iterations": 60})
    assert sel["iteration"] == 60 and sel["last_iteration"] == 60
    tie = drift + [row(60, 1.0, 138.0, 0.04)]
    assert select_teacher({"history": tie, "warm_start": warm, "iterations": 60})["iteration"] == 0  # the earliest
    assert select_teacher({"history": drift, "warm_start": {}, "iterations": 40})["iteration"] == 40


def test_critic_warmup_freezes_the_actor_then_restores_its_learning_rate(lib, tmp_path):
    import torch

    from train.teacher import load_teacher

    env = TrackingEnv(lib, EnvConfig(num_envs=8, seed=0, reward="mjlab", terminations="mjlab"))
    cfg = dataclasses.replace(TINY, iterations=2, save_every=1, warm_start_steps=20, critic_warmup_iterations=1,
                              learning_rate=3e-4, freeze_normalizer=True)
    train_teacher(env, cfg, tmp_path)
    warm, after_warmup, last = (load_teacher(env, tmp_path, iteration=i) for i in (0, 1, 2))
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))  # noqa: E731
    assert same(warm, after_warmup)  # iteration 1 trained the critic only
    norm = lambda a: torch.cat([b.flatten() for b in a.obs_normalizer.buffers()])  # noqa: E731
    assert torch.equal(norm(warm), norm(last))  # the normalizer stays at the warm start's statistics
    assert not same(after_warmup, last)  # iteration 2 trains the actor
    import json

    from robomirror.trainer import CKPT_PREFIX
    assert (tmp_path / f"{CKPT_PREFIX}{0:08d}").is_dir()  # the warm start is a checkpoint of its own
    with pytest.raises(Exception, match="iteration 7"):
        load_teacher(env, tmp_path, iteration=7)
    assert json.loads((tmp_path / f"{CKPT_PREFIX}{2:08d}" / "state.json").read_text())["iteration"] == 2
    from robomirror.trainer import load_checkpoint
    from train.teacher import _modules

    runner = build_runner(env, cfg)
    load_checkpoint(tmp_path / f"{CKPT_PREFIX}{1:08d}", _modules(runner), runner.alg.optimizer)
    assert runner.alg.optimizer.param_groups[0]["lr"] == 3e-4  # not what the adaptive schedule made of a zero KL


def test_warm_start_noise_perturbs_the_rollouts_not_the_labels(lib):
    """DART: with noise_std the regression's states come from perturbed rollouts (the normalizer sees other
    states), while every label is still the clean target at the state reached."""
    import torch

    seen = []
    target = lambda e: seen.append(e.state.root_pos_w.copy()) or np.zeros((e.num_envs, 23))  # noqa: E731
    stats = []
    for noise in (0.0, 0.5):
        seen.clear()
        env = TrackingEnv(lib, EnvConfig(num_envs=4, seed=0, reward="mjlab", terminations="mjlab"))
        actor = build_runner(env, TINY).alg.actor
        torch.manual_seed(0)
        out = warm_start(actor, env, steps=5, rollout_steps=15, target=target, noise_std=noise)
        assert out["warm_start_label_rms"] == 0.0  # labels carry no noise
        stats.append(np.concatenate(seen))
    assert not np.allclose(stats[0], stats[1])  # the noisy rollouts went elsewhere


def test_warm_start_also_regresses_on_the_rollouts_of_more_envs(lib):
    """more_envs (policy-learn: the evaluation setup from every clip's first frame) add their own rollouts, each
    labelled by the target at its own state."""
    envs_seen = []
    target = lambda e: envs_seen.append(e) or np.zeros((e.num_envs, 23))  # noqa: E731
    env = TrackingEnv(lib, EnvConfig(num_envs=4, seed=0, reward="mjlab", terminations="mjlab"))
    ev = TrackingEnv(lib, EnvConfig(num_envs=6, seed=1).evaluation("sim2sim"))
    actor = build_runner(env, TINY).alg.actor
    out = warm_start(actor, env, steps=3, rollout_steps=5, target=target, more_envs=(ev,))
    assert out["warm_start_samples"] == 5 * (4 + 6)
    assert envs_seen.count(env) == 5 and envs_seen.count(ev) == 5
    assert (ev.frame <= 5).all()  # the evaluation setup starts every world at its clip's first frame


@pytest.mark.parametrize("anchor_steps", [0, 4])
def test_a_killed_warm_started_run_resumes_bit_identical(lib, tmp_path, anchor_steps):
    """policy-learn's teacher path (prior-style warm target with DART noise, rollouts in a second env, critic
    warm-up, frozen normalizer, with and without anchor steps) killed after the warm-up segment ends where an
    uninterrupted run ends: the anchor's demonstrations are collected again, the same."""
    import torch
    from safetensors.torch import load_file

    cfg = dataclasses.replace(TINY, iterations=3, save_every=1, warm_start_steps=20, warm_start_rollout_steps=8,
                              warm_start_noise_std=0.3, critic_warmup_iterations=1, freeze_normalizer=True,
                              anchor_steps=anchor_steps)
    target = lambda e: np.tile(np.linspace(-0.2, 0.2, 23), (e.num_envs, 1))  # noqa: E731
    env = lambda: TrackingEnv(lib, EnvConfig(num_envs=8, seed=0, reward="mjlab", terminations="mjlab"))  # noqa: E731
    more = lambda: (TrackingEnv(lib, EnvConfig(num_envs=2, seed=1).evaluation("sim2sim")),)  # noqa: E731
    train_teacher(env(), cfg, tmp_path / "a", warm_target=target, warm_envs=more())
    train_teacher(env(), dataclasses.replace(cfg, iterations=1), tmp_path / "b", warm_target=target,
                  warm_envs=more())  # "killed"
    train_teacher(env(), cfg, tmp_path / "b", resume=True, warm_target=target, warm_envs=more())
    a = load_file(str(tmp_path / "a" / "ckpt-00000003" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "ckpt-00000003" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_anchor_steps_keep_the_actor_on_the_demonstrators_labels(lib, tmp_path):
    """After the same PPO segments, the actor anchored to the warm start's demonstrations (teacher.anchor_steps)
    is nearer their labels than the one left to PPO alone."""
    import torch

    from train.teacher import demonstrations, load_teacher, seed_all

    cfg = dataclasses.replace(TINY, iterations=3, save_every=1, warm_start_steps=60, warm_start_rollout_steps=8,
                              freeze_normalizer=True, init_std=0.5, learning_rate=3e-3)
    target = lambda e: np.tile(np.linspace(-0.3, 0.3, 23), (e.num_envs, 1))  # noqa: E731
    env = lambda: TrackingEnv(lib, EnvConfig(num_envs=8, seed=0, reward="mjlab", terminations="mjlab"))  # noqa: E731
    e = env()
    seed_all(0, 1)
    obs, y = demonstrations(e, 8, target)
    err = {}
    for k in (0, 60):
        train_teacher(env(), dataclasses.replace(cfg, anchor_steps=k), tmp_path / str(k), warm_target=target)
        actor = load_teacher(env(), tmp_path / str(k))
        with torch.no_grad():
            err[k] = float(torch.mean((actor.mlp(actor.get_latent(obs)) - y) ** 2))
    assert err[60] < 0.5 * err[0], err
