"""IK recovers robot poses it generated itself; outputs stay inside the joint limits; feet in
contact do not penetrate the floor."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.clip import retarget_clip
from retarget.config import RetargetConfig
from retarget.correspondence import G1_KEYPOINTS
from retarget.robot import G1


@pytest.fixture(scope="module")
def robot() -> G1:
    return G1("g1_23dof")


def _robot_motion(robot: G1, n: int = 90, fps: float = 30.0, seed: int = 0):
    """A smooth, standing-ish G1 motion within limits: legs bend, arms swing, root moves forward."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    lo, hi = robot.joint_limits
    names = robot.config.joints
    joints = np.zeros((n, len(names)))
    for j, name in enumerate(names):
        if any(k in name for k in ("knee", "elbow", "shoulder_pitch", "hip_pitch", "ankle_pitch")):
            amp = 0.25 * min(hi[j] - lo[j], 1.2)
            centre = np.clip(0.3 if "knee" in name else (-0.15 if "hip_pitch" in name else 0.0), lo[j], hi[j])
            joints[:, j] = np.clip(centre + amp * np.sin(2 * np.pi * (0.4 + 0.3 * rng.random()) * t + rng.random() * 6),
                                   lo[j] + 0.05, hi[j] - 0.05)
    root = np.zeros((n, 3))
    root[:, 0] = 0.0 * t  # in place: a sliding root would make no foot a contact
    root[:, 2] = 0.76
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    qpos = robot.qpos(root, quat, joints)
    root[:, 2] -= robot.foot_bottom_z(qpos).min(axis=1)  # the lower foot on the floor in every frame
    return root, quat, joints


def test_ik_recovers_its_own_poses(robot):
    root, quat, joints = _robot_motion(robot)
    qpos = robot.qpos(root, quat, joints)
    names = tuple(G1_KEYPOINTS)
    kp = robot.keypoints(qpos, names)
    res = retarget_clip(robot, tuple(G1_KEYPOINTS[n] for n in names), kp, 30.0,
                        RetargetConfig(iterations_per_frame=8, smooth_sigma_frames=0.0, contact_lock=False))
    assert res.report["human_skeleton"] == "g1"
    assert res.report["shape_fit"]["root_scale"] == pytest.approx(1.0, abs=0.01)
    m = res.motion
    got = robot.keypoints(robot.qpos(m.root_pos_w, m.root_quat_wxyz, m.joint_pos), names)
    # compare poses up to a per-frame shift: grounding may move the whole body (tested below)
    err = np.linalg.norm((got - got.mean(1, keepdims=True)) - (kp - kp.mean(1, keepdims=True)), axis=-1)
    body = [i for i, n in enumerate(names) if "toe" not in n]
    assert np.median(err[:, body]) < 0.01 and np.percentile(err[5:, body], 95) < 0.03  # [m]
    # toes follow a flat-foot heuristic (skeletons disagree on toe joints), so they are looser
    assert np.median(err[:, [names.index("left_toe"), names.index("right_toe")]]) < 0.05
    legs = [i for i, n in enumerate(robot.config.joints) if any(k in n for k in ("knee", "hip_pitch"))]
    assert np.abs(m.joint_pos[5:, legs] - joints[5:, legs]).mean() < 0.05  # [rad]
    assert res.report["metrics"]["mpkpe_aligned_mean_m"] < 0.02


def test_limits_hold_and_contact_feet_do_not_penetrate(robot):
    root, quat, joints = _robot_motion(robot, seed=1)
    qpos = robot.qpos(root, quat, joints)
    names = tuple(G1_KEYPOINTS)
    kp = robot.keypoints(qpos, names) * 1.3  # a bigger "human": targets partly out of reach
    kp[..., 2] -= 0.05  # and partly below the floor
    res = retarget_clip(robot, tuple(G1_KEYPOINTS[n] for n in names), kp, 30.0, RetargetConfig(smooth_sigma_frames=2.0))
    lo, hi = robot.joint_limits
    m = res.motion
    assert np.all(m.joint_pos >= lo - 1e-9) and np.all(m.joint_pos <= hi + 1e-9)
    assert res.report["metrics"]["joint_limit_violations"] == 0
    low = robot.foot_bottom_z(robot.qpos(m.root_pos_w, m.root_quat_wxyz, m.joint_pos))
    assert low.min() > -1e-6  # nothing below the floor
    contact = m.contact
    assert contact.any() and np.all(np.abs(low[contact]) < 0.02)


@pytest.mark.parametrize("self_collision", [False, True])
def test_stacked_qp_is_pinks_own_solution(robot, monkeypatch, self_collision):
    """solve_clip assembles pink's QP itself (one stacked objective, daqp directly): the joint
    trajectories equal those pink.solve_ik gives for the same tasks one by one."""

    import retarget.ik as ik
    from retarget.clip import human_keypoints

    root, quat, joints = _robot_motion(robot, n=40)
    qpos = robot.qpos(root, quat, joints)
    names = tuple(G1_KEYPOINTS)
    kp = robot.keypoints(qpos, names)
    _, targets = human_keypoints(tuple(G1_KEYPOINTS[n] for n in names), kp)
    contact = robot.foot_bottom_z(qpos) < 0.02
    cfg = ik.IKConfig(self_collision=self_collision)
    ours = ik.solve_clip(robot, targets, contact, 30.0, cfg)

    monkeypatch.setattr(ik, "ik_velocity", ik.pink_reference_velocity)
    theirs = ik.solve_clip(robot, targets, contact, 30.0, cfg)
    assert np.abs(ours - theirs).max() < 1e-8
    assert np.abs(ours - ours[0]).max() > 0.05  # the clip moves: the comparison is not between two rest poses


def test_constant_posture_and_limit_stacks_are_pinks_numbers(robot):
    """The posture objective and the limit stack built once give pink's own numbers at any q."""
    import pink
    import pinocchio as pin
    from pink.limits import ConfigurationLimit, VelocityLimit

    import retarget.ik as ik

    model = robot.pin_model
    pin.seed(0)  # randomConfiguration draws from pinocchio's own generator
    config_limit, velocity_limit = ConfigurationLimit(model), VelocityLimit(model)
    stack = ik._ConstantLimits([config_limit, velocity_limit])
    ours, theirs = ik.ConstantPostureTask(0.02, model), pink.tasks.PostureTask(cost=0.02)
    for _ in range(3):
        q = pin.randomConfiguration(model, np.maximum(model.lowerPositionLimit, -3), np.minimum(model.upperPositionLimit, 3))
        conf = pink.Configuration(model, model.createData(), q)
        target = pin.randomConfiguration(model, np.maximum(model.lowerPositionLimit, -3),
                                         np.minimum(model.upperPositionLimit, 3))
        ours.set_target(target)
        theirs.set_target(target)
        for a, b in zip(ours.compute_qp_objective(conf), theirs.compute_qp_objective(conf), strict=True):
            assert np.allclose(a, b, rtol=0, atol=1e-15)
        pairs = [lim.compute_qp_inequalities(conf, 0.01) for lim in (config_limit, velocity_limit)]
        assert np.array_equal(stack.g, np.vstack([g for g, _ in pairs]))
        assert np.allclose(stack.h(conf, 0.01), np.hstack([h for _, h in pairs]), rtol=0, atol=1e-15)
