"""The G1 in MuJoCo and in pinocchio is the same robot."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from retarget.g1 import G1_23DOF_JOINTS, G1_29DOF_JOINTS, KEYPOINT_FRAMES, robot_config
from retarget.robot import G1
from robomirror.errors import ConfigError
from robomirror.rotations import quat_wxyz_to_matrix


@pytest.fixture(scope="module", params=["g1_29dof", "g1_23dof"])
def robot(request) -> G1:
    return G1(request.param)


def _random_q(robot: G1, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = robot.joint_limits
    quat = rng.normal(size=4)
    return rng.normal(size=3), quat / np.linalg.norm(quat), rng.uniform(lo, hi)


def test_mujoco_and_pinocchio_forward_kinematics_agree(robot):
    rng = np.random.default_rng(0)
    model = robot.pin_model
    data = model.createData()
    for _ in range(20):
        root, quat, joints = _random_q(robot, rng)
        pos_mj, quat_mj = robot.bodies(robot.qpos(root[None], quat[None], joints[None]))
        pin.framesForwardKinematics(model, data, robot.pin_q(root, quat, joints))
        for b, name in enumerate(robot.body_names):
            if not model.existFrame(name):
                continue  # bodies merged away by locking (none for the G1's joints)
            oMf = data.oMf[model.getFrameId(name)]
            np.testing.assert_allclose(oMf.translation, pos_mj[0, b], atol=1e-6)
            # rotation matrices compare without the quaternion double cover
            np.testing.assert_allclose(oMf.rotation, quat_wxyz_to_matrix(quat_mj[0, b]), atol=1e-6)
        for kp in ("head", "left_toe", "right_hand"):
            kp_mj = robot.keypoints(robot.qpos(root[None], quat[None], joints[None]), (kp,))[0, 0]
            np.testing.assert_allclose(data.oMf[model.getFrameId(f"kp_{kp}")].translation, kp_mj, atol=1e-6)


def test_configurations_and_limits():
    assert len(G1_29DOF_JOINTS) == 29 and len(G1_23DOF_JOINTS) == 23
    assert robot_config("g1_23dof").locked == tuple(j for j in G1_29DOF_JOINTS if "wrist" in j)
    with pytest.raises(ConfigError, match="g1_23dof"):
        robot_config("h1")
    g = G1("g1_23dof")
    lo, hi = g.joint_limits
    assert lo.shape == (23,) and np.all(lo < hi)
    assert np.all(g.velocity_limits > 0) and np.all(g.effort_limits >= 25)
    assert 30 < g.total_mass < 40  # the Menagerie G1 weighs about 33 kg
    assert set(KEYPOINT_FRAMES) >= {"pelvis", "head", "left_toe", "right_wrist"}


def test_standing_feet_touch_the_floor():
    g = G1()
    low = g.foot_bottom_z(g.zero_qpos[None])
    assert np.all(np.abs(low) < 0.005)


def test_robot_xml_override_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        G1(robot_xml=str(tmp_path / "missing.xml"))
