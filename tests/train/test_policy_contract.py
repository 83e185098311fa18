"""The G1 contract: observation dimensions and slices, gains, joint orders, motor map."""

from __future__ import annotations

import mujoco
import numpy as np

from robomirror import g1_contract as g1
from train.env.actuation import SIMS, build_model


def test_observation_dimensions_match_the_paper_tables_and_every_slice_is_named():
    assert g1.PROPRIO_DIM == 75
    assert g1.TEACHER_OBS.dim == 489 and g1.PRIVILEGED_OBS.dim == 250 and g1.STUDENT_OBS.dim == 2206
    for layout in (g1.TEACHER_OBS, g1.PRIVILEGED_OBS, g1.STUDENT_OBS):
        names = [n for n, _ in layout.terms]
        assert len(names) == len(set(names))
        sl = layout.slices()
        assert sl[names[-1]].stop == layout.dim and all(s.stop > s.start for s in sl.values())
    assert g1.STUDENT_OBS.slices()["motion_latent"] == slice(0, 256)
    assert g1.TEACHER_OBS.slices()["ref_keypoints_b_m"].stop - g1.TEACHER_OBS.slices()["ref_keypoints_b_m"].start == 81
    assert len(g1.MASS_BODIES) == 22 and g1.N_KEYPOINTS == 27


def test_gains_follow_the_mjlab_armature_rule():
    knee = g1.POLICY_JOINTS.index("left_knee_joint")  # a 7520-22 motor
    assert abs(g1.KP[knee] - 99.1) < 0.05 and abs(g1.KD[knee] - 6.31) < 0.01
    w = 2 * np.pi * 10
    assert np.allclose(g1.KP, g1.ARMATURE * w ** 2) and np.allclose(g1.KD, 2 * 2.0 * g1.ARMATURE * w)
    assert np.allclose(g1.ACTION_SCALE, 0.25 * g1.EFFORT_LIMIT_NM / g1.KP)
    ankle = g1.POLICY_JOINTS.index("left_ankle_pitch_joint")  # two 5020s
    assert g1.EFFORT_LIMIT_NM[ankle] == 50.0
    assert np.allclose(g1.action_from_target(g1.target_from_action(np.arange(23.0))), np.arange(23.0))


def test_isaac_breadth_first_order_is_the_mjcf_tree_by_depth():
    m = build_model(SIMS["train"])

    def depth(joint: str) -> int:
        b, d = m.jnt_bodyid[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, joint)], 0
        while b != 1:  # up to the pelvis
            b, d = m.body_parentid[b], d + 1
        return d
    depths = [depth(j) for j in g1.ISAAC_POLICY_JOINTS]
    assert depths == sorted(depths) and g1.ISAAC_POLICY_JOINTS[:3] == (
        "left_hip_pitch_joint", "right_hip_pitch_joint", "waist_yaw_joint")
    x = np.arange(23)
    assert np.array_equal(x[g1.MUJOCO_TO_ISAAC][g1.ISAAC_TO_MUJOCO], x)


def test_every_g1_motor_is_driven_by_the_policy_or_held_as_a_locked_wrist():
    slots = np.concatenate([g1.POLICY_TO_MOTOR, g1.LOCKED_TO_MOTOR])
    assert sorted(slots) == list(range(29)) and g1.N_MOTOR_SLOTS == 35


def test_the_env_model_holds_the_wrists_with_pd_after_the_23_policy_actuators():
    for sim in SIMS.values():
        m = build_model(sim)
        assert m.nu == 29 and m.nq == 7 + 29 and abs(m.opt.timestep * sim.decimation - 0.02) < 1e-12
        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in range(m.nu)]
        assert names == list(g1.POLICY_JOINTS + g1.WRIST_JOINTS)
        wrists = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in g1.WRIST_JOINTS]
        assert np.allclose(m.dof_armature[m.jnt_dofadr[wrists]], [g1.armature_kg_m2(j) for j in g1.WRIST_JOINTS])
        if not sim.explicit_pd:  # position actuators: the wrists' own gains
            assert np.allclose(m.actuator_gainprm[23:, 0], g1.LOCKED_KP)
            assert np.allclose(m.actuator_biasprm[23:, 2], -g1.LOCKED_KD)


def test_the_deploy_sim_steps_the_env_sim2sim_model():
    from deploy.backends.sim import build_robot_model

    a, b = build_model(SIMS["sim2sim"]), build_robot_model()
    for f in ("nq", "nv", "nu", "ngeom", "opt.timestep", "opt.integrator"):
        assert eval(f"a.{f}") == eval(f"b.{f}"), f
    for f in ("dof_armature", "actuator_gainprm", "actuator_ctrlrange", "geom_friction", "geom_condim",
              "geom_priority", "body_mass", "jnt_range"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def test_the_contract_joint_ranges_are_the_mjcf_ones_and_gravity_matches_rotation():
    from robomirror.rotations import quat_wxyz_to_matrix

    m = build_model(SIMS["train"])
    ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in g1.POLICY_JOINTS]
    assert np.allclose(m.jnt_range[ids], g1.JOINT_RANGE_RAD)
    q = np.random.default_rng(0).normal(size=(5, 4))
    want = np.einsum("nji,j->ni", quat_wxyz_to_matrix(q), [0, 0, -1.0])
    assert np.allclose(g1.projected_gravity_b(q), want)
