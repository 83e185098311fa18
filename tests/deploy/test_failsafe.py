"""Issue 19, row by row: every fault the runtime can meet ends in damping on the wire, latched with its
reason, and a non-zero exit; nothing inconsistent is accepted at load; a fuzz of both LCM channels."""

from __future__ import annotations

import json
import os
import signal
import time

import lcm
import numpy as np
import pytest

from deploy.backends.lcm_backend import (
    CMD_CHANNEL,
    LATENT_CHANNEL,
    STATE_CHANNEL,
    LcmBackend,
    LcmLatentSubscriber,
    decode_cmd,
    encode_latent,
    encode_state,
)
from deploy.runtime import (
    EXIT_DAMPED,
    EXIT_EXCEPTION,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    DeployError,
    FakeClock,
    LatentBox,
    LatentSample,
    OnnxPolicy,
    Runtime,
    RuntimeConfig,
    RuntimeFault,
    damping_slots_ok,
    run_cycles,
)
from deploy.safety import Mode, SafetyConfig
from robomirror import g1_contract as g1
from tests.deploy.test_runtime import FakeRobot, _runtime, _to_policy

KD = SafetyConfig().damping_kd


def _latent(clock, **kw) -> LatentSample:
    return LatentSample(np.zeros(256, np.float32), clock.now(), "vae-A", "vlm-A", **kw)


def _is_damping(cmd) -> bool:
    return damping_slots_ok(cmd, KD)


# ------------------------------------------------------------------------------ exceptions -> damping
class LcmRig:
    """The runtime on an LcmBackend (memq), a robot peer that publishes states and records commands."""

    def __init__(self, policy_path, cfg: RuntimeConfig | None = None) -> None:
        self.lc = lcm.LCM("memq://")
        self.robot = FakeRobot()
        self.wire: list = []
        self.lc.subscribe(CMD_CHANNEL, lambda ch, d: self.wire.append(decode_cmd(d)))
        self.rt, self.box, self.clock = _runtime(policy_path, LcmBackend(self.lc), latent=False)
        if cfg is not None:
            self.rt = Runtime(self.rt.policy, self.rt.backend, self.clock, self.box, cfg)
        LcmLatentSubscriber(self.lc, self.box, self.clock)

    def publish_state(self) -> None:
        self.lc.publish(STATE_CHANNEL, encode_state(self.robot.read_state()))

    def pump(self) -> None:
        while self.lc.handle_timeout(0) > 0:
            pass

    def latent(self) -> None:
        self.lc.publish(LATENT_CHANNEL, encode_latent(_latent(self.clock), int(time.time() * 1e6)))

    def to_policy(self) -> None:
        for _ in range(int(self.rt.safety.cfg.ramp_s * 50) + 2):
            self.latent()
            self.publish_state()
            self.rt.cycle()
            self.pump()
        assert self.rt.safety.mode == Mode.POLICY and self.wire[-1].kp.max() > 0


def test_garbage_on_the_state_channel_ends_in_damping_and_a_nonzero_exit(small_policy):
    rig = LcmRig(small_policy)
    rig.to_policy()
    rig.lc.publish(STATE_CHANNEL, os.urandom(300))

    def before(i: int) -> None:
        rig.latent()
        if i:
            rig.publish_state()
    code = run_cycles(rig.rt, 5, before, log=lambda s: None)
    rig.pump()
    assert code == EXIT_EXCEPTION
    assert _is_damping(rig.wire[-1])
    assert "malformed LowState" in rig.rt.safety.fault_reason and rig.rt.safety.mode == Mode.DAMPING


def test_garbage_on_the_latent_channel_is_refused_and_later_latents_still_arrive(small_policy):
    rig = LcmRig(small_policy)
    rig.lc.publish(LATENT_CHANNEL, os.urandom(64))
    rig.lc.publish(LATENT_CHANNEL, b"\x00" * 7)
    rig.pump()
    assert rig.box.n_rejected == 2 and "malformed latent" in rig.box.rejected[0]
    rig.latent()
    rig.pump()
    assert rig.box.received == 1 and rig.box.latest() is not None


def test_the_latent_thread_survives_garbage(small_policy):
    box = LatentBox(256, OnnxPolicy(small_policy))
    lc = lcm.LCM("memq://")
    sub = LcmLatentSubscriber(lc, box, FakeClock())
    sub.spin_in_thread()
    try:
        for _ in range(20):
            lc.publish(LATENT_CHANNEL, os.urandom(int(np.random.default_rng(0).integers(1, 400))))
        lc.publish(LATENT_CHANNEL, encode_latent(_latent(FakeClock()), int(time.time() * 1e6)))
        deadline = time.monotonic() + 5
        while box.received == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert box.received == 1 and sub._thread.is_alive() and box.n_rejected >= 15
    finally:
        sub.stop()


@pytest.mark.parametrize("where", ["policy", "send", "read_state"])
def test_an_exception_anywhere_in_the_cycle_sends_damping_first(small_policy, where):
    robot = FakeRobot()
    rt, box, clock = _runtime(small_policy, robot)
    _to_policy(rt, box, clock)
    boom = RuntimeError("boom")
    if where == "policy":
        rt.policy.act = lambda obs, noise: (_ for _ in ()).throw(boom)
    elif where == "read_state":
        robot.read_state = lambda: (_ for _ in ()).throw(boom)
    else:
        real_send = robot.send
        calls = []

        def send(cmd):  # the policy command fails; the damping that follows goes through
            calls.append(cmd)
            if len(calls) == 1:
                raise boom
            real_send(cmd)
        robot.send = send
    box.put(_latent(clock))
    with pytest.raises(RuntimeFault) as e:
        rt.cycle()
    assert e.value.damping_sent and _is_damping(robot.sent[-1])
    assert "boom" in rt.safety.fault_reason and rt.safety.mode == Mode.DAMPING and rt.exit_code() == EXIT_EXCEPTION


def test_a_backend_that_cannot_send_at_all_is_reported(small_policy):
    robot = FakeRobot()
    rt, box, clock = _runtime(small_policy, robot)
    robot.send = lambda cmd: (_ for _ in ()).throw(OSError("link down"))
    with pytest.raises(RuntimeFault, match="could not be sent") as e:
        rt.cycle()
    assert not e.value.damping_sent


def test_ctrl_c_and_sigterm_send_damping_then_exit_with_their_codes(small_policy):
    for exc, code in ((KeyboardInterrupt(), EXIT_SIGINT), (None, EXIT_SIGTERM)):
        robot = FakeRobot()
        rt, box, clock = _runtime(small_policy, robot)
        _to_policy(rt, box, clock)

        def before(i: int, exc=exc, rt=rt, box=box, clock=clock) -> None:
            box.put(_latent(clock))
            if i == 3:
                if exc is not None:
                    rt.policy.act = lambda obs, noise: (_ for _ in ()).throw(exc)
                else:
                    os.kill(os.getpid(), signal.SIGTERM)  # arrives between cycles: still damping first
        assert run_cycles(rt, 10, before, log=lambda s: None) == code
        assert _is_damping(robot.sent[-1]) and rt.safety.mode == Mode.DAMPING
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_a_latched_fault_keeps_damping_and_exits_nonzero(small_policy):
    robot = FakeRobot()
    rt, box, clock = _runtime(small_policy, robot)
    _to_policy(rt, box, clock)
    robot.nan = True
    assert run_cycles(rt, 5, lambda i: box.put(_latent(clock)), log=lambda s: None) == EXIT_DAMPED
    assert all(_is_damping(c) for c in robot.sent[-5:])
    rt2, box2, clock2 = _runtime(small_policy)
    assert run_cycles(rt2, 130, lambda i: box2.put(_latent(clock2)), log=lambda s: None) == EXIT_OK


# ------------------------------------------------------------------------------ refused at load
def _edit_policy(src, dst, meta: dict | None = None, drop: str | None = None):
    import onnx

    m = onnx.load(str(src))
    if drop:
        keep = [p for p in m.metadata_props if p.key != drop]
        del m.metadata_props[:]
        m.metadata_props.extend(keep)
    for p in m.metadata_props:
        if meta and p.key in meta:
            p.value = meta[p.key]
    onnx.save(m, str(dst))
    return dst


def _linear_policy(src, dst, obs_dim: int, act_dim: int):
    """A one-matmul ONNX graph (obs_dim -> act_dim) carrying `src`'s metadata: a policy of another shape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((obs_dim, act_dim), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "w"], ["action"])], "linear",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_dim]),
         helper.make_tensor_value_info("noise", TensorProto.FLOAT, ["batch", 23])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", act_dim])], [w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    for p in onnx.load(str(src)).metadata_props:
        m.metadata_props.add(key=p.key, value=p.value)
    onnx.save(m, str(dst))
    return dst


def test_inconsistent_policies_are_refused_at_load_with_the_runtimes_own_error(small_policy, tmp_path):
    meta = {p: v for p, v in ((p.key, p.value) for p in __import__("onnx").load(str(small_policy)).metadata_props)}
    kp = np.asarray(json.loads(meta["kp"]))
    kd = np.asarray(json.loads(meta["kd"]))
    layout_128 = json.dumps(g1.student_obs(128).as_json())  # 2078 inputs by the metadata, 2206 in the graph
    cases = {
        "kp x10": (dict(meta={"kp": json.dumps((kp * 10).tolist())}), "kp of"),
        "kd -5": (dict(meta={"kd": json.dumps((kd * 0 - 5).tolist())}), "kd of"),
        "obs size": (dict(meta={"obs_layout": layout_128}), "size|dry run"),
        "missing key": (dict(drop="kd"), "missing"),
        "not JSON": (dict(meta={"action_scale": "[0.1, oops"}), "not JSON"),
        "kp shape": (dict(meta={"kp": "[1, 2]"}), "shape"),
    }
    for name, (kw, match) in cases.items():
        with pytest.raises(DeployError, match=match):
            OnnxPolicy(_edit_policy(small_policy, tmp_path / f"{name}.onnx", **kw))
    with pytest.raises(DeployError, match="action has size 29"):
        OnnxPolicy(_linear_policy(small_policy, tmp_path / "out29.onnx", 2206, 29))
    with pytest.raises(DeployError, match="obs has size 2078"):
        OnnxPolicy(_linear_policy(small_policy, tmp_path / "in2078.onnx", 2078, 23))
    assert OnnxPolicy(_linear_policy(small_policy, tmp_path / "ok.onnx", 2206, 23)).latent_dim == 256
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "garbage.onnx").write_bytes(os.urandom(2000))
    for name, match in (("empty", "empty"), ("garbage", "not a loadable ONNX"), ("absent", "no such file")):
        with pytest.raises(DeployError, match=match):
            OnnxPolicy(tmp_path / f"{name}.onnx")


def test_the_command_line_refuses_a_bad_policy_with_exit_2_not_a_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "p.onnx"
    bad.write_bytes(b"not onnx")
    out = subprocess.run([sys.executable, "-m", "deploy", "robot", "--policy", str(bad), "--seconds", "0.1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "not a loadable ONNX" in out.stderr and "Traceback" not in out.stderr


# ------------------------------------------------------------------------------ state, falls, timing
def test_a_joint_measured_far_outside_its_range_is_a_fault_and_no_target_leaves_the_range(small_policy):
    for q_knee in (100.0, -100.0):
        robot = FakeRobot()
        rt, box, clock = _runtime(small_policy, robot)
        _to_policy(rt, box, clock)
        knee = g1.G1_29DOF_JOINTS.index("left_knee_joint")
        robot.q[knee] = q_knee
        box.put(_latent(clock))
        rt.cycle()
        assert rt.safety.mode == Mode.DAMPING and "left_knee_joint measured" in rt.safety.fault_reason
        assert _is_damping(robot.sent[-1])
        assert all(np.all(np.abs(c.q[:29]) < 4.0) for c in robot.sent)


def test_held_wrists_ramp_from_where_they_are(small_policy):
    robot = FakeRobot()
    robot.q[g1.LOCKED_TO_MOTOR] = [1.2, -1.2, 1.2, -1.2, 1.2, -1.2]
    rt, box, clock = _runtime(small_policy, robot)
    rt.cycle()
    first = robot.sent[0]
    wrist_q = first.q[g1.LOCKED_TO_MOTOR]
    assert np.allclose(wrist_q, robot.q[g1.LOCKED_TO_MOTOR], atol=0.05)  # no jump to 0
    torque = first.kp[g1.LOCKED_TO_MOTOR] * (wrist_q - robot.q[g1.LOCKED_TO_MOTOR])
    assert np.all(np.abs(torque) <= g1.MOTOR_EFFORT_LIMIT_NM[g1.LOCKED_TO_MOTOR] + 1e-9)


def _tilted(rad: float) -> np.ndarray:
    return np.array([np.cos(rad / 2), np.sin(rad / 2), 0.0, 0.0])


def test_a_fall_is_detected_from_the_imu_and_from_the_pelvis_height(small_policy):
    robot = FakeRobot()
    rt, box, clock = _runtime(small_policy, robot)
    _to_policy(rt, box, clock)
    quat = _tilted(0.8)  # a lean the robot may take: no fault
    robot.read_state = (lambda orig: lambda: (lambda s: (setattr(s, "imu_quat_wxyz", quat), s)[1])(orig()))(robot.read_state)
    box.put(_latent(clock))
    rt.cycle()
    assert rt.safety.mode == Mode.POLICY
    quat[:] = _tilted(1.3)
    rt.cycle()
    assert rt.safety.mode == Mode.DAMPING and "tilted 1.30 rad" in rt.safety.fault_reason and _is_damping(robot.sent[-1])
    robot2 = FakeRobot()
    robot2.root_height_m = lambda: 0.2
    rt2, box2, clock2 = _runtime(small_policy, robot2)
    rt2.cycle()
    assert rt2.safety.mode == Mode.DAMPING and "pelvis at 0.20 m" in rt2.safety.fault_reason


def test_late_wakeups_count_as_overruns_and_a_stall_is_a_fault_then_the_schedule_rephases(small_policy):
    rt, box, clock = _runtime(small_policy)
    _to_policy(rt, box, clock)
    clock.wake_late_s = 0.008  # every wake-up 8 ms late: beyond late_wake_ms, within late_fault_ms
    for _ in range(rt.safety.cfg.overrun_limit + 1):
        box.put(_latent(clock))
        rt.cycle()
    assert rt.safety.mode == Mode.DAMPING and "overruns in a row" in rt.safety.fault_reason
    rt, box, clock = _runtime(small_policy)
    _to_policy(rt, box, clock)
    box.put(_latent(clock))
    rt.cycle()
    clock.advance(0.2)  # a 200 ms stall between two cycles
    rt.cycle()
    rt.cycle()
    assert rt.safety.mode == Mode.DAMPING and "late" in rt.safety.fault_reason
    periods = [r.period_ms for r in rt.records[-2:]]
    assert rt.rephased >= 1 and all(p >= 19.9 for p in periods)  # no catch-up burst of 0 ms periods


# ------------------------------------------------------------------------------ latents
def test_latents_from_the_future_or_without_model_ids_are_refused(small_policy):
    box = LatentBox(256, OnnxPolicy(small_policy), wall=lambda: 1000.0)
    assert not box.put(_latent(FakeClock(), sent_wall_s=1000.0 + 3600))
    assert "in the future" in box.rejected[-1]
    assert not box.put(_latent(FakeClock(), sent_wall_s=1000.0 - 5))
    assert "old on arrival" in box.rejected[-1]
    assert not box.put(LatentSample(np.zeros(256, np.float32), 0.0, "", ""))
    assert "carries no vae_id" in box.rejected[-1]
    assert box.put(_latent(FakeClock(), sent_wall_s=1000.1)) and box.received == 1


# ------------------------------------------------------------------------------ fuzz
def test_fuzz_both_lcm_channels_the_wire_only_carries_valid_commands_or_damping(small_policy):
    rng = np.random.default_rng(7)
    rig = LcmRig(small_policy, RuntimeConfig(safety=SafetyConfig(ramp_s=0.1)))
    rt = rig.rt
    faults, modes = 0, set()
    deadline = time.monotonic() + 8.0
    fingerprints = {}
    from deploy.lcm_types.robomirror_lcm import low_state_t, motion_latent_t
    fingerprints[STATE_CHANNEL] = low_state_t._get_packed_fingerprint()
    fingerprints[LATENT_CHANNEL] = motion_latent_t._get_packed_fingerprint()
    while time.monotonic() < deadline:
        for ch in (STATE_CHANNEL, LATENT_CHANNEL):
            r = rng.random()
            if r < 0.04:  # random bytes
                rig.lc.publish(ch, rng.bytes(int(rng.integers(0, 600))))
            elif r < 0.08:  # the right fingerprint, then random bytes: decodes into garbage values
                rig.lc.publish(ch, fingerprints[ch] + rng.bytes(int(rng.integers(0, 1200))))
            elif ch == STATE_CHANNEL:
                rig.publish_state()
            else:
                rig.latent()
        try:
            modes.add(rt.cycle().mode)
        except RuntimeFault:
            rt.backend.error = None
        rig.pump()
        if rt.safety.mode == Mode.DAMPING:  # latched (an exception or a bad value): reset, fuzz on
            faults += 1
            rt.reset()
    lo, hi = g1.MOTOR_RANGE_RAD[:, 0], g1.MOTOR_RANGE_RAD[:, 1]
    kp_max, kd_max = g1.gain_bounds(g1.MOTOR_ARMATURE)
    assert len(rig.wire) > 50 and faults > 5 and {"ramp", "policy", "damping"} <= modes
    for c in rig.wire:
        assert not c.unset_slots() and np.all(np.isfinite(c.q)) and np.all(np.isfinite(c.kd))
        if _is_damping(c):
            continue
        assert np.all(c.q[:29] >= lo - 1e-6) and np.all(c.q[:29] <= hi + 1e-6)
        assert np.all(c.kp[:29] > 0) and np.all(c.kp[:29] <= kp_max) and np.all(c.kd[:29] >= 0)
        assert np.all(c.kd[:29] <= kd_max)


def test_runtime_config_allows_no_ramp(small_policy):
    rt, box, clock = _runtime(small_policy)
    rt2 = Runtime(rt.policy, FakeRobot(), clock, box, RuntimeConfig(safety=SafetyConfig(ramp_s=0.0)))
    rt2.cycle()
    assert rt2.safety.mode == Mode.POLICY and rt2.first_policy_s is not None


def test_an_intent_process_that_dies_is_an_error_of_the_run_not_a_silent_hold():
    import multiprocessing as mp

    from deploy.run import IntentWatch

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=time.sleep, args=(60,), daemon=True)
    proc.start()
    watch = IntentWatch(proc, q)
    q.put({"video_start_monotonic": 1.0})
    time.sleep(0.5)
    watch.poll(1.0)
    assert watch.error is None and watch.video_start == 1.0
    proc.kill()
    proc.join(10)
    watch.poll(3.2)
    assert "died at 3.2 s" in watch.error and "exit code -9" in watch.error
    done = IntentWatch(proc, q)  # a process that sent its rows and exited is fine
    q.put({"rows": [{"t": 0}]})
    time.sleep(0.2)
    done.poll(None)
    assert done.error is None and done.rows == [{"t": 0}]
