"""The 50 Hz runtime on a fake clock: modes, every safety fault (damping within one cycle), latents,
the LCM path against a loopback peer, the sim backend's episode and mp4, and the Jetson import set."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import lcm
import numpy as np
import pytest

from deploy.backends.lcm_backend import (
    LATENT_CHANNEL,
    LcmBackend,
    LcmLatentSubscriber,
    LcmRobotPeer,
    decode_cmd,
    decode_state,
    encode_cmd,
    encode_latent,
    encode_state,
)
from deploy.lowcmd import N_SLOTS, LowState
from deploy.runtime import (
    DeployError,
    FakeClock,
    LatentBox,
    LatentSample,
    OnnxPolicy,
    Runtime,
    build_lowcmd,
    damping_slots_ok,
)
from deploy.safety import Mode
from robomirror import g1_contract as g1


class FakeRobot:
    """A robot that reports a fixed standing state (tick advances) and records commands."""

    def __init__(self) -> None:
        self.tick, self.sent = 0, []
        q = np.zeros(N_SLOTS)
        q[g1.POLICY_TO_MOTOR] = g1.DEFAULT_JOINT_POS_RAD
        self.q, self.freeze, self.nan = q, False, False

    def read_state(self) -> LowState:
        if not self.freeze:
            self.tick += 1
        gyro = np.array([np.nan, 0, 0]) if self.nan else np.zeros(3)
        return LowState(self.tick, self.q.copy(), np.zeros(N_SLOTS), np.array([1.0, 0, 0, 0]), gyro, 2)

    def send(self, cmd) -> None:
        self.sent.append(cmd)

    def close(self) -> None:
        pass


def _runtime(policy_path, robot=None, clock=None, latent=True):
    clock = clock or FakeClock()
    pol = OnnxPolicy(policy_path)
    box = LatentBox(pol.latent_dim, pol)
    rt = Runtime(pol, robot or FakeRobot(), clock, box)
    if latent:
        box.put(LatentSample(np.zeros(256, np.float32), clock.now(), "vae-A", "vlm-A"))
    return rt, box, clock


def _to_policy(rt, box, clock):
    for _ in range(int(rt.safety.cfg.ramp_s * 50) + 2):
        box.put(LatentSample(np.zeros(256, np.float32), clock.now(), "vae-A", "vlm-A"))
        rt.cycle()
    assert rt.safety.mode == Mode.POLICY


def test_ramp_then_policy_and_a_stale_latent_holds_and_says_so(small_policy):
    rt, box, clock = _runtime(small_policy)
    rt.cycle()
    assert rt.safety.mode == Mode.RAMP and clock.now() == pytest.approx(0.02)  # no sleeping: the clock jumped
    _to_policy(rt, box, clock)
    for _ in range(60):  # no new latent for 1.2 s
        rt.cycle()
    assert rt.safety.mode == Mode.HOLD
    assert "stale" in rt.safety.transitions[-1].reason
    assert np.allclose(rt.backend.sent[-1].q[g1.POLICY_TO_MOTOR], g1.DEFAULT_JOINT_POS_RAD, atol=1e-6)


@pytest.mark.parametrize("fault", ["nan_state", "stale_state", "overruns", "estop", "nan_action"])
def test_every_fault_ends_in_damping_within_one_cycle_and_latches(small_policy, fault):
    robot = FakeRobot()
    rt, box, clock = _runtime(small_policy, robot)
    _to_policy(rt, box, clock)
    n_before = len(robot.sent)
    if fault == "nan_state":
        robot.nan = True
        rt.cycle()
    elif fault == "stale_state":
        robot.freeze = True
        for _ in range(rt.safety.cfg.state_stale_cycles):
            rt.cycle()
    elif fault == "overruns":
        clock.compute_s = 0.03  # every cycle takes 30 ms of a 20 ms period
        for _ in range(rt.safety.cfg.overrun_limit):
            rt.cycle()
        rt.cycle()  # the command after the Nth overrun
    elif fault == "estop":
        rt.estop()
        rt.cycle()
    elif fault == "nan_action":
        rt.policy.act = lambda obs, noise: np.full(23, np.nan)
        rt.cycle()
    assert rt.safety.mode == Mode.DAMPING
    assert damping_slots_ok(robot.sent[-1], rt.safety.cfg.damping_kd)
    n_fault = len(robot.sent) - n_before
    assert n_fault <= {"stale_state": rt.safety.cfg.state_stale_cycles,
                       "overruns": rt.safety.cfg.overrun_limit + 1}.get(fault, 1)
    robot.nan, robot.freeze, clock.compute_s = False, False, 0.0
    for _ in range(5):
        box.put(LatentSample(np.zeros(256, np.float32), clock.now(), "vae-A", "vlm-A"))
        rt.cycle()
    assert rt.safety.mode == Mode.DAMPING  # latched until reset
    assert rt.safety.transitions[-1].to_mode == "damping" and rt.safety.transitions[-1].reason
    rt.reset()
    rt.cycle()
    assert rt.safety.mode == Mode.RAMP


def test_targets_are_rate_limited_torque_bounded_and_in_range(small_policy):
    rt, box, clock = _runtime(small_policy)
    _to_policy(rt, box, clock)
    rt.policy.act = lambda obs, noise: np.full(23, 50.0)  # far outside every joint's range
    before = rt.backend.sent[-1].q[:29].copy()
    for _ in range(40):
        box.put(LatentSample(np.zeros(256, np.float32), clock.now(), "vae-A", "vlm-A"))
        rt.cycle()
        after = rt.backend.sent[-1].q[:29]
        assert np.all(after <= g1.MOTOR_RANGE_RAD[:, 1] + 1e-9) and np.all(after >= g1.MOTOR_RANGE_RAD[:, 0] - 1e-9)
        assert np.all(np.abs(after - before) <= rt.shaping.rate_rad_s * 0.02 + 1e-9)
        q = g1.MOTOR_DEFAULT_POS_RAD  # the fake robot stands still there
        assert np.all(np.abs(rt.kp29 * (after - q)) <= g1.MOTOR_EFFORT_LIMIT_NM + 1e-6)
        before = after.copy()
    assert rt.safety.mode == Mode.POLICY
    counts = rt.clipped.total()
    assert counts["torque"] > 0 and counts["range"] > 0  # the fake robot never moves: the torque bound holds it


def test_latents_from_other_models_and_policies_of_another_contract_are_refused(small_policy, tmp_path):
    import onnx

    pol = OnnxPolicy(small_policy)
    with pytest.raises(DeployError, match="vae_id"):
        pol.check_models("vae-B", "vlm-A")
    box = LatentBox(256, pol)
    assert not box.put(LatentSample(np.zeros(256, np.float32), 0.0, "vae-B", "vlm-A"))
    assert not box.put(LatentSample(np.full(256, np.nan, np.float32), 0.0, "vae-A", "vlm-A"))
    assert "vae_id" in box.rejected[0] and box.latest() is None
    m = onnx.load(str(small_policy))
    for p in m.metadata_props:
        if p.key == "joint_names":
            p.value = json.dumps(list(g1.ISAAC_POLICY_JOINTS))  # an Isaac-order policy
    bad = tmp_path / "isaac.onnx"
    onnx.save(m, str(bad))
    with pytest.raises(DeployError, match="joint order"):
        OnnxPolicy(bad)


def test_lcm_messages_round_trip_over_memq():
    lc = lcm.LCM("memq://")
    got = {}
    tick = 2 ** 31 + 5  # Unitree's tick is uint32, mode_machine uint8: no sign flip, no truncation
    st = LowState(tick, np.arange(N_SLOTS, dtype=np.float32) * 0.1, np.ones(N_SLOTS), np.array([1.0, 0, 0, 0]),
                  np.array([0.1, 0.2, 0.3], np.float32), 200, np.zeros(N_SLOTS))
    cmd = build_lowcmd(g1.DEFAULT_JOINT_POS_RAD, g1.KP, g1.KD, 200)
    lc.subscribe("s", lambda c, d: got.__setitem__("s", decode_state(d)))
    lc.subscribe("c", lambda c, d: got.__setitem__("c", decode_cmd(d)))
    lc.publish("s", encode_state(st))
    lc.publish("c", encode_cmd(cmd))
    lc.handle_timeout(100)
    lc.handle_timeout(100)
    assert got["s"].tick == tick and np.allclose(got["s"].q, st.q) and got["s"].mode_machine == 200
    assert got["c"].mode_machine == 200
    assert np.array_equal(got["c"].mode, cmd.mode) and np.allclose(got["c"].kp, cmd.kp.astype(np.float32))
    box = LatentBox(256)
    clock = FakeClock(5.0)
    LcmLatentSubscriber(lc, box, clock)
    lc.publish(LATENT_CHANNEL, encode_latent(LatentSample(np.arange(256, dtype=np.float32), 0, "v", "w", "d",
                                                          (1.0, 2.0, 3.0)), int(time.time() * 1e6)))
    lc.handle_timeout(100)
    s = box.latest()
    assert np.allclose(s.latent, np.arange(256)) and s.received_s == 5.0 and s.stage_ms == (1.0, 2.0, 3.0)


class ReplayRobot(FakeRobot):
    """Recorded states, replayed in order (commands ignored)."""

    def __init__(self, states) -> None:
        super().__init__()
        self.states, self.i = states, 0

    def read_state(self) -> LowState:
        s = self.states[min(self.i, len(self.states) - 1)]
        self.i += 1
        return s


def test_the_observation_is_identical_from_the_sim_and_through_lcm(small_policy):
    from deploy.backends.sim import SimBackend

    clock = FakeClock()
    sim = SimBackend(clock)
    states = []
    for _ in range(120):
        states.append(sim.read_state())
        cmd = build_lowcmd(g1.DEFAULT_JOINT_POS_RAD + 0.1 * np.sin(clock.now()), g1.KP, g1.KD, 0)
        sim.send(cmd)
        clock.advance(0.02)
    direct, box_a, clock_a = _runtime(small_policy, ReplayRobot(states))
    lc = lcm.LCM("memq://")
    peer = LcmRobotPeer(ReplayRobot(states), lc)
    via_lcm, box_b, clock_b = _runtime(small_policy, LcmBackend(lc))
    obs_a, obs_b = [], []
    for _ in range(115):
        for rt, box, clock, out in ((direct, box_a, clock_a, obs_a), (via_lcm, box_b, clock_b, obs_b)):
            if rt is via_lcm:
                peer.pump()
            box.put(LatentSample(np.zeros(256, np.float32), clock.now(), "vae-A", "vlm-A"))
            rt.cycle()
            if rt.last_obs is not None:
                out.append(rt.last_obs.copy())
    assert len(obs_a) == len(obs_b) > 10
    assert all(np.array_equal(a, b) for a, b in zip(obs_a, obs_b, strict=True))


def test_the_lcm_backend_drives_the_sim_robot_through_a_loopback_peer(small_policy, tmp_path):
    from deploy.backends.sim import SimBackend

    clock = FakeClock()
    sim = SimBackend(clock, video=tmp_path / "run.mp4")
    lc = lcm.LCM("memq://")
    peer = LcmRobotPeer(sim, lc)
    peer.pump()
    rt, box, _ = _runtime(small_policy, LcmBackend(lc), clock)
    rt.on_policy.append(sim.release_band)
    for _ in range(150):
        peer.pump()
        box.put(LatentSample(np.zeros(256, np.float32), clock.now(), "vae-A", "vlm-A"))
        rt.cycle()
    assert rt.first_policy_s is not None and not sim.band_on and sim.cmd is not None
    # a random-weight policy (plumbing) may topple once the band is off: then the fall detector damps
    assert rt.safety.mode == Mode.POLICY or "fall" in rt.safety.fault_reason
    assert 18 <= min(sim.latencies_ms) and max(sim.latencies_ms) <= 30
    video = sim.close()
    assert video.is_file() and video.stat().st_size > 1000


def test_the_runtime_side_imports_no_training_stack():
    code = ("import sys; import deploy.runtime, deploy.safety, deploy.lowcmd, deploy.backends.lcm_backend; "
            "print(' '.join(sorted(m for m in ('torch', 'ray', 'lance', 'transformers', 'mujoco', 'pandas', 'duckdb') "
            "if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
