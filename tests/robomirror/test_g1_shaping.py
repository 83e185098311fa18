"""The one action -> motor-target shaping (robomirror.g1_shaping): it never binds on the most dynamic
reference motions we have, it clips what it exists to catch at the right stage and counts it, and the
policy env and the robot runtime both call it (issue 25)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robomirror import g1_contract as g1
from robomirror import g1_shaping
from robomirror.g1_shaping import STAGES, ClipCounter, Shaping, ShapingConfig, motor_gains, motor_targets

DT_S = 1.0 / g1.POLICY_HZ
DYNAMIC_CLIPS = ("spinkick", "backflip", "cartwheel", "jump")  # DeepMimic's; the sample corpus has no jump
OLD_DEPLOY_RATE_RAD_S = 8.0  # deploy/safety.py's target rate limit before issue 25


@pytest.fixture(scope="module")
def references() -> dict[str, np.ndarray]:
    """Each clip's retargeted 23-joint reference at the policy rate, (T, 23) [rad]."""
    from retarget.clip import retarget_clip
    from retarget.config import RetargetConfig
    from retarget.deepmimic import download_wheel, load_clips
    from retarget.robot import G1

    wheel = download_wheel(Path(__file__).resolve().parents[2] / "data" / "cache")
    if wheel is None:
        pytest.skip("pybullet's wheel (DeepMimic's motions) is not in data/cache and no registry is reachable")
    robot = G1()
    out = {}
    for c in load_clips(wheel, DYNAMIC_CLIPS):
        r = retarget_clip(robot, c.joint_names, c.joint_pos_w, c.fps, RetargetConfig(floor_z_m=0.0))
        assert tuple(r.motion.joint_names) == g1.POLICY_JOINTS
        out[c.name] = r.motion.resampled(g1.POLICY_HZ).joint_pos
    assert set(out) == set(DYNAMIC_CLIPS)
    return out


def test_replaying_the_most_dynamic_references_changes_no_target(references):
    """The envelope catches what training never produces: a perfect tracker of spinkick, backflip,
    cartwheel and jump (state one frame behind its target, moving at the reference's velocity) is
    never clipped by any stage, although these motions are faster than the old 8 rad/s deploy limit."""
    shaping, (kp, kd) = Shaping(), motor_gains(g1.KP, g1.KD)
    for name, q23 in references.items():
        q = g1.motor_vector(q23, g1.LOCKED_JOINT_POS_RAD)  # (T, 29)
        dq = np.gradient(q, DT_S, axis=0)
        counter = ClipCounter()
        out, masks = shaping(q[1:], q[:-1], q[:-1], dq[:-1], kp, kd, DT_S)
        counter.add(masks)
        assert counter.cycles == len(q) - 1
        assert counter.total() == dict.fromkeys(STAGES, 0), (name, counter.as_json())
        assert np.array_equal(out, q[1:])
        speed = np.abs(np.diff(q, axis=0)) / DT_S
        assert speed.max() > OLD_DEPLOY_RATE_RAD_S, name  # the old limit would have held these back
        assert np.all(speed <= shaping.rate_rad_s), name


def _one_motor_case(joint: str):
    """Every motor at rest at its default pose, the target equal to it: nothing binds."""
    i = g1.G1_29DOF_JOINTS.index(joint)
    q = g1.MOTOR_DEFAULT_POS_RAD.copy()
    kp, kd = motor_gains(g1.KP, g1.KD)
    return i, q.copy(), q.copy(), q.copy(), np.zeros_like(q), kp, kd


@pytest.mark.parametrize("fault", ["out of range", "jump", "against a large torque"])
def test_each_fault_is_clipped_by_its_own_stage_and_counted(fault):
    shaping, counter = Shaping(), ClipCounter()
    joint = "left_knee_joint"  # 7520-22: 20 rad/s, 139 N m, range [-0.087, 2.88]
    i, target, prev, q, dq, kp, kd = _one_motor_case(joint)
    lo, hi = g1.MOTOR_RANGE_RAD[i]
    step = 2.0 * g1.MOTOR_VELOCITY_LIMIT_RAD_S[i] * DT_S
    if fault == "out of range":  # the joint near its stop, the target 0.5 rad beyond it (within a rate step)
        q[i] = prev[i] = hi - 0.01
        target[i], stage, want = hi + 0.5, "range", hi
        assert target[i] - prev[i] < step
    elif fault == "jump":  # well inside the range and the torque bound, but 2x a rate step away
        target[i], stage, want = prev[i] + 2 * step, "rate", prev[i] + step
        assert target[i] < hi and kp[i] * step < g1.MOTOR_EFFORT_LIMIT_NM[i]
    else:  # the joint is held 3 rad away from a target inside its range: kp * 3 rad > the effort limit
        q[i] = prev[i] = target[i] = 2.0
        q[i] = target[i] - 3.0  # outside the range itself, as a blocked joint would read
        stage, want = "torque", q[i] + g1.MOTOR_EFFORT_LIMIT_NM[i] / kp[i]
    out, masks = shaping(target, prev, q, dq, kp, kd, DT_S)
    counter.add(masks)
    assert out[i] == pytest.approx(want)
    assert {s: np.flatnonzero(m).tolist() for s, m in masks.items()} == {s: [i] if s == stage else [] for s in STAGES}
    assert np.array_equal(np.delete(out, i), np.delete(target, i))
    assert counter.as_json() == {"cycles": 1, **{s: {joint: 1} if s == stage else {} for s in STAGES}}
    torque = kp * (out - q) - kd * dq
    assert np.all(np.abs(torque) <= g1.MOTOR_EFFORT_LIMIT_NM + 1e-9) and lo <= out[i] <= hi


def test_batched_worlds_are_shaped_and_counted_one_by_one():
    """The env shapes all worlds in one call; the counter sums them per joint."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 3, size=(8, g1.N_ACT))
    kp, kd = motor_gains(g1.KP, g1.KD)
    prev = np.tile(g1.MOTOR_DEFAULT_POS_RAD, (8, 1))
    out, masks = Shaping()(motor_targets(a), prev, prev, np.zeros_like(prev), kp, kd, DT_S)
    for w in range(8):
        one, m1 = Shaping()(motor_targets(a[w]), prev[w], prev[w], np.zeros(29), kp, kd, DT_S)
        assert np.array_equal(out[w], one) and all(np.array_equal(masks[s][w], m1[s]) for s in STAGES)
    c = ClipCounter()
    c.add(masks)
    assert c.cycles == 8 and c.total() == {s: int(masks[s].sum()) for s in STAGES}
    assert np.all(out[:, g1.LOCKED_TO_MOTOR] == g1.LOCKED_JOINT_POS_RAD)  # the wrists stay held


def test_the_env_and_the_runtime_both_shape_with_it(monkeypatch):
    """By identity (the same class and function objects, no copy) and by call: one env step and one
    runtime cycle each go through Shaping.__call__ once, with (..., 29) motor-order targets."""
    from deploy import runtime
    from deploy.backends.sim import SimBackend
    from deploy.safety import SafetyConfig
    from train.env import tracking_env
    from train.env.synthetic import library

    for mod in (tracking_env, runtime):
        assert mod.Shaping is g1_shaping.Shaping and mod.motor_targets is g1_shaping.motor_targets
        assert mod.motor_gains is g1_shaping.motor_gains and mod.ClipCounter is g1_shaping.ClipCounter
    calls, real = [], Shaping.__call__

    def counted(self, target, *args):
        calls.append(np.shape(target))
        return real(self, target, *args)

    monkeypatch.setattr(Shaping, "__call__", counted)
    env = tracking_env.TrackingEnv(library(1), tracking_env.EnvConfig(num_envs=3).evaluation())
    assert isinstance(env.shaping, Shaping) and env.cfg_t.shaping == ShapingConfig()
    env.step(env.get_observations()["residual_base"])
    assert calls == [(3, 29)] and env.clipped.cycles == 3

    class ZeroPolicy:  # the runtime's policy interface, without an ONNX file
        kp, kd, latent_dim = g1.KP, g1.KD, 256

        def act(self, obs, noise):
            return np.zeros(g1.N_ACT)

    clock = runtime.FakeClock()
    rt = runtime.Runtime(ZeroPolicy(), SimBackend(clock), clock, runtime.LatentBox(256),
                         runtime.RuntimeConfig(safety=SafetyConfig(ramp_s=0.0)))
    rt.cycle()
    assert calls[1:] == [(29,)] and isinstance(rt.shaping, Shaping) and rt.clipped.cycles == 1
