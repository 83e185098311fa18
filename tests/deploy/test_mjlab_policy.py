"""mjlab's ONNX in deploy/: its metadata contract mapped through the G1 contract, refusals by name, our ONNX
through the same check, the observation adapter's torso frame against MuJoCo, and a run in the sim.

The mjlab-kind ONNX here is built in the test the way mjlab's tracking runner builds its export (inputs obs
and time_step; outputs actions and the bundled reference; metadata as comma-separated text with 3
decimals, as `mjlab.rl.exporter_utils.attach_metadata_to_onnx` writes it): no mjlab venv needed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deploy.mjlab_policy import (
    MJLAB_KEYS,
    NO_STATE_ESTIMATION_TASK,
    MjlabTrackingPolicy,
    contract_from_metadata,
    run_in_sim,
    torso_rot_w,
)
from deploy.runtime import DeployError, OnnxPolicy
from robomirror import g1_contract as g1

TRACKING_BODIES = ("pelvis", "left_hip_roll_link", "left_knee_link", "left_ankle_roll_link", "right_hip_roll_link",
                   "right_knee_link", "right_ankle_roll_link", "torso_link", "left_shoulder_roll_link",
                   "left_elbow_link", "left_wrist_yaw_link", "right_shoulder_roll_link", "right_elbow_link",
                   "right_wrist_yaw_link")
TERMS = ("command", "motion_anchor_ori_b", "base_ang_vel", "joint_pos", "joint_vel", "actions")


def csv(values, decimals: int = 3) -> str:
    """mjlab's list_to_csv_str: numbers with 3 decimals, sequences joined by ';'."""
    def one(x):
        if isinstance(x, (list, tuple)):
            return ";".join(one(v) for v in x)
        return f"{x:.{decimals}f}" if isinstance(x, (int, float)) else str(x)
    return ",".join(one(x) for x in values)


def mjlab_metadata(joints=g1.G1_29DOF_JOINTS, terms=TERMS) -> dict[str, str]:
    kp = [g1.kp_nm_rad(j) for j in joints]
    return {"run_path": "local", "joint_names": csv(joints), "joint_stiffness": csv(kp),
            "joint_damping": csv([g1.kd_nm_s_rad(j) for j in joints]),
            "default_joint_pos": csv([g1.MOTOR_DEFAULT_POS_RAD[g1.G1_29DOF_JOINTS.index(j)] for j in joints]),
            "command_names": "motion", "observation_names": csv(terms),
            "observation_terms_scale": csv([1.0] * len(terms)),
            "observation_terms_flatten_history_dim": csv([1.0] * len(terms)),
            "observation_terms_history_length": csv([0.0] * len(terms)),
            "observation_terms_clip": csv([[float("-inf"), float("inf")]] * len(terms)),
            "action_scale": csv([0.25 * g1.effort_limit_nm(j) / k for j, k in zip(joints, kp, strict=True)]),
            "anchor_body_name": "torso_link", "body_names": csv(TRACKING_BODIES)}


def tracking_onnx(path, meta: dict[str, str], joints=g1.G1_29DOF_JOINTS, frames: int = 20, gain: float = 0.0,
                  obs_dim: int | None = None):
    """A tracking ONNX of mjlab's shape: actions = gain * obs @ W, the reference a standing pose (the contract's
    default, pelvis at 0.76 m) gathered at the clamped time step."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n, b = len(joints), len(TRACKING_BODIES)
    d = obs_dim or (4 * n + 9 + n)
    qref = np.array([g1.MOTOR_DEFAULT_POS_RAD[g1.G1_29DOF_JOINTS.index(j)] for j in joints], np.float32)
    pos = np.zeros((frames, b, 3), np.float32)
    pos[:, :, 2] = g1.DEFAULT_ROOT_HEIGHT_M
    quat = np.zeros((frames, b, 4), np.float32)
    quat[..., 0] = 1.0
    bufs = {"joint_pos": np.tile(qref, (frames, 1)), "joint_vel": np.zeros((frames, n), np.float32),
            "body_pos_w": pos, "body_quat_w": quat, "body_lin_vel_w": np.zeros((frames, b, 3), np.float32),
            "body_ang_vel_w": np.zeros((frames, b, 3), np.float32)}
    rng = np.random.default_rng(0)
    w = (gain * rng.standard_normal((d, n)) / np.sqrt(d)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([frames - 1], np.int64), "last")]
    nodes = [helper.make_node("MatMul", ["obs", "W"], ["actions"]),
             helper.make_node("Cast", ["time_step"], ["ts_i"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["ts_i", "last_shape"], ["ts_flat"]),
             helper.make_node("Min", ["ts_flat", "last"], ["ts"])]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "last_shape"))
    outs = [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, n])]
    for k, v in bufs.items():
        inits.append(numpy_helper.from_array(v, k + "_buf"))
        nodes.append(helper.make_node("Gather", [k + "_buf", "ts"], [k], axis=0))
        outs.append(helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, *v.shape[1:]]))
    graph = helper.make_graph(nodes, "tracking", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, d]),
                                                   helper.make_tensor_value_info("time_step", TensorProto.FLOAT, [1, 1])],
                              outs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


@pytest.fixture
def mjlab_onnx(tmp_path):
    return tracking_onnx(tmp_path / "mjlab.onnx", mjlab_metadata())


def test_mjlab_metadata_maps_into_the_motor_order_by_name(tmp_path):
    isaac = g1.breadth_first(g1.G1_29DOF_JOINTS)  # another order than ours: the map must follow the names
    assert isaac != g1.G1_29DOF_JOINTS
    p = MjlabTrackingPolicy(tracking_onnx(tmp_path / "isaac.onnx", mjlab_metadata(isaac), isaac))
    c = p.contract
    assert c.joint_names == isaac
    knee = isaac.index("left_knee_joint")
    a = np.zeros(29)
    a[knee] = 1.0
    target = p.target_motor(a)
    m = g1.G1_29DOF_JOINTS.index("left_knee_joint")
    scale = 0.25 * g1.effort_limit_nm("left_knee_joint") / g1.kp_nm_rad("left_knee_joint")
    assert target[m] == pytest.approx(g1.MOTOR_DEFAULT_POS_RAD[m] + scale, abs=2e-3)  # 3 decimals on the wire
    others = np.delete(np.arange(29), m)
    np.testing.assert_allclose(target[others], g1.MOTOR_DEFAULT_POS_RAD[others], atol=1e-3)
    kp29, kd29 = c.motor_gains()
    np.testing.assert_allclose(kp29, [g1.kp_nm_rad(j) for j in g1.G1_29DOF_JOINTS], atol=1e-3)
    np.testing.assert_allclose(kd29, [g1.kd_nm_s_rad(j) for j in g1.G1_29DOF_JOINTS], atol=1e-3)
    assert p.obs_dim == 2 * 29 + 6 + 3 + 3 * 29


def _refused(tmp_path, meta: dict[str, str], **kw) -> str:
    with pytest.raises(DeployError) as e:
        MjlabTrackingPolicy(tracking_onnx(tmp_path / "bad.onnx", meta, **kw))
    return str(e.value)


@pytest.mark.parametrize("key", MJLAB_KEYS)
def test_a_missing_contract_key_is_refused_by_name(tmp_path, key):
    meta = mjlab_metadata()
    del meta[key]
    msg = _refused(tmp_path, meta)
    assert f"['{key}'] missing" in msg


def test_mismatches_are_refused_by_name(tmp_path):
    joints = list(g1.G1_29DOF_JOINTS)
    meta = mjlab_metadata()
    meta["joint_names"] = csv(joints[:-1] + ["right_wrist_spin_joint"])
    assert "['right_wrist_spin_joint'], not joints of the 29-DoF G1" in _refused(tmp_path, meta)

    short = tuple(j for j in joints if j != "waist_roll_joint")  # 28 joints: which one is missing is said
    msg = _refused(tmp_path, mjlab_metadata(short), joints=short)
    assert "28 joints, missing ['waist_roll_joint']" in msg

    meta = mjlab_metadata()
    meta["joint_names"] = csv(joints[:-1] + ["left_knee_joint"])
    assert "lists ['left_knee_joint'] more than once" in _refused(tmp_path, meta)

    meta = mjlab_metadata()
    meta["joint_damping"] = csv([1.0] * 28)
    assert "'joint_damping' has 28 values for 29 joints" in _refused(tmp_path, meta)

    kp = [g1.kp_nm_rad(j) for j in joints]
    kp[joints.index("right_knee_joint")] *= 10  # ~32 Hz on that motor: above the 20 Hz bound
    meta = mjlab_metadata()
    meta["joint_stiffness"] = csv(kp)
    assert "joint_stiffness of right_knee_joint is" in _refused(tmp_path, meta)

    meta = mjlab_metadata()
    meta["joint_damping"] = csv([-1.0 if j == "left_elbow_joint" else 1.0 for j in joints])
    assert "joint_damping of left_elbow_joint is -1.000" in _refused(tmp_path, meta)

    meta = mjlab_metadata()
    meta["action_scale"] = csv([0.0 if j == "waist_yaw_joint" else 0.3 for j in joints])
    assert "action_scale of waist_yaw_joint is 0.0" in _refused(tmp_path, meta)

    meta = mjlab_metadata()
    meta["default_joint_pos"] = csv([3.5 if j == "left_knee_joint" else 0.0 for j in joints])
    assert "default_joint_pos of left_knee_joint is 3.500 rad, outside its range" in _refused(tmp_path, meta)


def test_one_scale_for_all_joints_is_mjlabs_float_scale(tmp_path):
    meta = mjlab_metadata()
    meta["action_scale"] = "0.5"  # mjlab writes str(float) when its scale is one number
    p = MjlabTrackingPolicy(tracking_onnx(tmp_path / "f.onnx", meta))
    np.testing.assert_allclose(p.contract.action_scale, 0.5)


def test_observations_the_low_state_cannot_feed_are_refused(tmp_path):
    terms = ("command", "motion_anchor_pos_b", "motion_anchor_ori_b", "base_lin_vel", "base_ang_vel", "joint_pos",
             "joint_vel", "actions")
    msg = _refused(tmp_path, mjlab_metadata(terms=terms), obs_dim=160)
    assert "'motion_anchor_pos_b' needs the root's world position" in msg and NO_STATE_ESTIMATION_TASK in msg
    msg = _refused(tmp_path, mjlab_metadata(terms=("command", "height_scan")), obs_dim=58 + 10)
    assert "observation term 'height_scan' is not one this runtime builds" in msg
    meta = mjlab_metadata()
    meta["observation_terms_history_length"] = csv([0.0, 0.0, 0.0, 5.0, 0.0, 0.0])
    assert "'joint_pos' has observation_terms_history_length '5.000'" in _refused(tmp_path, meta)
    assert "takes obs of size 150" in _refused(tmp_path, mjlab_metadata(), obs_dim=150)


def test_our_onnx_carries_mjlabs_keys_and_goes_through_the_same_check(small_policy, tmp_path):
    import onnx

    raw = {p.key: p.value for p in onnx.load(str(small_policy)).metadata_props}
    for key in MJLAB_KEYS:
        assert key in raw
    c = contract_from_metadata(raw, "ours")
    assert c.joint_names == g1.POLICY_JOINTS
    np.testing.assert_allclose(c.action_scale, g1.ACTION_SCALE)
    np.testing.assert_allclose(c.kp_nm_rad, g1.KP)
    np.testing.assert_allclose(c.kd_nm_s_rad, g1.KD)
    np.testing.assert_allclose(c.default_joint_pos_rad, g1.DEFAULT_JOINT_POS_RAD)
    np.testing.assert_allclose(c.motor(c.default_joint_pos_rad), g1.MOTOR_DEFAULT_POS_RAD)  # wrists: locked pose
    OnnxPolicy(small_policy)  # loads, through that check

    # the runtime's loader refuses ours by mjlab's key names, as it refuses mjlab's
    for drop, want in (("joint_damping", "['joint_damping'] missing"),
                       ("default_joint_pos", "['default_joint_pos'] missing")):
        m = onnx.load(str(small_policy))
        keep = [p for p in m.metadata_props if p.key != drop]
        del m.metadata_props[:]
        m.metadata_props.extend(keep)
        onnx.save(m, str(tmp_path / f"{drop}.onnx"))
        with pytest.raises(DeployError, match=want.replace("[", r"\[").replace("]", r"\]")):
            OnnxPolicy(tmp_path / f"{drop}.onnx")
    m = onnx.load(str(small_policy))
    for p in m.metadata_props:
        if p.key == "joint_stiffness":
            p.value = json.dumps((g1.KP * 1.5).tolist())  # in bounds, but not what `kp` says
    onnx.save(m, str(tmp_path / "disagree.onnx"))
    with pytest.raises(DeployError, match="'joint_stiffness' differs from 'kp'"):
        OnnxPolicy(tmp_path / "disagree.onnx")


def test_torso_frame_from_the_imu_and_waist_matches_mujoco():
    import mujoco

    from deploy.backends.sim import build_robot_model

    m = build_robot_model()
    d = mujoco.MjData(m)
    torso = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "torso_link")
    waist = [m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j)]
             for j in ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint")]
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = rng.standard_normal(4)
        q /= np.linalg.norm(q)
        angles = rng.uniform(-0.5, 0.5, 3)
        d.qpos[3:7], d.qpos[waist] = q, angles
        mujoco.mj_kinematics(m, d)
        np.testing.assert_allclose(torso_rot_w(q, angles), d.xmat[torso].reshape(3, 3), atol=1e-9)


def test_a_zero_action_policy_runs_in_the_sim_from_the_references_first_frame(mjlab_onnx):
    p = MjlabTrackingPolicy(mjlab_onnx)
    from deploy.backends.sim import SimBackend
    from deploy.mjlab_policy import start_qpos
    from deploy.runtime import FakeClock

    be = SimBackend(FakeClock(), seed=0)
    ref = p.reference(0)
    be.set_state(*start_qpos(p, be, ref))
    obs = p.observation(be.read_state(), np.zeros(29), ref)
    at = dict(zip(TERMS, np.cumsum([0, 58, 6, 3, 29, 29]), strict=True))  # where each term starts
    np.testing.assert_allclose(obs[at["command"]:at["command"] + 29], g1.MOTOR_DEFAULT_POS_RAD, atol=1e-6)
    ori = at["motion_anchor_ori_b"]
    np.testing.assert_allclose(obs[ori:ori + 6], [1, 0, 0, 1, 0, 0], atol=1e-5)  # robot on the reference: no rotation
    np.testing.assert_allclose(obs[at["joint_pos"]:at["joint_pos"] + 29], 0.0, atol=1e-5)  # at the default pose

    r = run_in_sim(p, cycles=25)
    assert r["policy_cycles"] == 25 and r["stayed_up"], r  # 0.5 s at the default pose with mjlab's gains
    assert r["joint_err_mean_rad"] < 0.05
    assert r["pelvis_height_min_m"] > 0.6
