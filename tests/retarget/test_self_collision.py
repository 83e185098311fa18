"""Self-collision avoidance in the IK: the distance, its gradient, and what it buys on real mocap."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from retarget.robot import G1
from retarget.self_collision import SelfCollisionLimit, segment_distances


def test_segment_distances_match_a_dense_search():
    rng = np.random.default_rng(0)
    n = 200
    p0, p1, q0, q1 = (rng.normal(size=(n, 3)) for _ in range(4))
    p1[:20] = p0[:20]  # degenerate segments (spheres) too
    q1[10:30] = q0[10:30]
    q1[40:60] = q0[40:60] + 2.0 * (p1[40:60] - p0[40:60])  # parallel segments
    d, on_p, on_q = segment_distances(p0, p1, q0, q1)
    s = np.linspace(0.0, 1.0, 401)
    dense_p = p0[:, None] + s[None, :, None] * (p1 - p0)[:, None]
    dense_q = q0[:, None] + s[None, :, None] * (q1 - q0)[:, None]
    brute = np.linalg.norm(dense_p[:, :, None] - dense_q[:, None, :], axis=-1).min(axis=(1, 2))
    assert np.all(d <= brute + 1e-9)  # never above the true minimum ...
    assert np.all(d >= brute - 5e-3)  # ... and within the grid's resolution of it
    assert np.allclose(np.linalg.norm(on_p - on_q, axis=-1), d)


@pytest.fixture(scope="module")
def robot() -> G1:
    return G1()


def test_rows_are_the_distance_gradient(robot):
    """Each active row is -(d distance / d q): checked against finite differences on the configuration."""
    import pink

    model = robot.pin_model
    limit = SelfCollisionLimit(model, robot.mj, influence_m=1.0)  # every pair active
    q = pin.neutral(model)
    q[2] = 0.8
    q[model.joints[model.getJointId("left_elbow_joint")].idx_q] = 1.2
    q[model.joints[model.getJointId("left_shoulder_roll_joint")].idx_q] = 0.3
    conf = pink.Configuration(model, model.createData(), q)
    g, h = limit.compute_qp_inequalities(conf, 0.01)
    d0 = limit.distances(conf.data)[0]
    assert g.shape == (len(limit.pairs), model.nv) and np.all(h >= 0)
    rng = np.random.default_rng(1)
    for _ in range(3):
        dq = 1e-6 * rng.normal(size=model.nv)
        moved = pink.Configuration(model, model.createData(), pin.integrate(model, q, dq))
        change = limit.distances(moved.data)[0] - d0
        assert np.allclose(change, -g @ dq, atol=1e-9, rtol=1e-3)


def test_a_pair_inside_the_margin_must_separate_and_a_conflict_never_fails_the_ik(robot):
    """Inside the margin a row asks the pair to separate (h < 0, bounded by push_m); where the rows
    cannot be met with the joint limits the step is solved without them instead of failing."""
    import pink
    from pink.limits import ConfigurationLimit, VelocityLimit
    from pink.tasks import PostureTask

    import retarget.ik as ik

    model = robot.pin_model
    limit = SelfCollisionLimit(model, robot.mj)
    q = pin.neutral(model)
    q[model.joints[model.getJointId("left_shoulder_roll_joint")].idx_q] = -0.6  # arm pressed into the torso
    conf = pink.Configuration(model, model.createData(), q)
    d = limit.distances(conf.data)[0]
    assert d.min() < limit.d_min_m  # the pose is inside the margin
    _, h = limit.compute_qp_inequalities(conf, 0.01)
    assert h.min() < 0 and h.min() >= -limit.push_m

    class Impossible:  # 0 . dq <= -1: no step satisfies it
        def compute_qp_inequalities(self, configuration, dt):
            return np.zeros((1, model.nv)), np.array([-1.0])

    posture = PostureTask(cost=1.0)
    posture.set_target(pin.neutral(model))
    plain = ik._ConstantLimits([ConfigurationLimit(model), VelocityLimit(model)])
    conflicting = ik._ConstantLimits([ConfigurationLimit(model), VelocityLimit(model)], [Impossible()])
    v = ik.ik_velocity(conf, [posture], conflicting, 0.01)
    assert np.allclose(v, ik.ik_velocity(conf, [posture], plain, 0.01))
    assert np.abs(v).max() > 0  # a real step: towards the posture target, out of the collision


def test_the_fingerprint_follows_the_option_and_the_code_revision(monkeypatch):
    """A retarget cached by older code or with the other setting is never reused."""
    import retarget.config as config_mod
    from retarget.config import RetargetConfig

    base = RetargetConfig().fingerprint()
    assert RetargetConfig(self_collision=True).fingerprint() != base
    monkeypatch.setattr(config_mod, "RETARGET_REVISION", config_mod.RETARGET_REVISION + 1)
    assert RetargetConfig().fingerprint() != base
