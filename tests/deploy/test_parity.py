"""Parity, env vs deploy (issue 25): what runs on the robot is what ran in training.

The same ONNX policy, the same clip, the same start state (the clip's frame 0, as the env's reset
puts it), stepped for 3 s (150 cycles at 50 Hz) in
(a) the policy env's `sim2sim` setup with nominal physics and a fixed control delay (the env's
    `delay_steps`), driven by the ONNX through the student observation (DDIM noise zeros), and
(b) the robot runtime (`deploy.runtime.Runtime`, no start-up ramp) on a FakeClock with the deploy sim
    backend at the same fixed command latency, reporting the low state in float64,
at 0 and 20 ms. Both must give the same joint trajectories (to JOINT_TOL_RAD = 1e-9 rad; measured: 0.0,
bit-identical, as both sides run the same model and the same arithmetic) and the same Succ /
E_mpjpe / E_mpkpe, computed for both from the simulator's qpos against the reference the way
train/sim2sim.py does. Where they part, the failure names the first cycle and the first stage that
differs: state read, observation, action, shaping, command, physics.

Neither policy is a trained tracker, and both make the G1 fall (so Succ is 0 on both sides; what is
compared is that it is the same): `small`, an MLP student whose action is a small (|a| < 0.1) function
of the whole observation, holds the reference pose open loop and falls after ~1.3 s, as replaying the
reference's joint targets does (no policy stands without feedback at these gains); the random-weight
diffusion student of conftest moves hard and falls at once, with the shaping binding. The env's
terminations are switched off for the run (recorded, not acted on), so all 150 cycles are compared,
the fall and its contacts included, where any difference in the bits would grow; the metrics stop at
the first failure, as train/sim2sim.py's do.

The sim backend has no command before the runtime's first one (motors limp), while the env holds
the reset pose in its delay line until the first action arrives: the test primes the sim with that
hold command (the reset pose, the nominal gains), which is what the env's delay line does. At 0 ms
the runtime's first command replaces it before the first physics step, so it only acts at 20 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np
import pytest
import torch

from deploy.backends.sim import SimBackend
from deploy.runtime import FakeClock, LatentBox, LatentSample, OnnxPolicy, Runtime, RuntimeConfig, build_lowcmd
from deploy.safety import SafetyConfig
from robomirror import g1_contract as g1
from robomirror.g1_shaping import motor_gains
from train.env import terminations, tracking_env
from train.env.actuation import ModelIndex, keypoints_w
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv

CYCLES = 150  # 3 s
LATENCIES_S = (0.0, 0.02)
JOINT_TOL_RAD = 1e-9  # both sides run the same arithmetic on the same model: the trajectories are identical
OBS_TOL = 0.0  # float32 observations of identical states are identical
STAGES = ("state read", "observation", "action", "shaping", "command", "physics")
VAE, VLM = "vae-A", "vlm-A"


@dataclass
class Trace:
    """Per cycle k: what each stage produced."""

    state: list = field(default_factory=list)  # (29,) joint positions as read at the start of the cycle
    obs: list = field(default_factory=list)  # (2206,) float32
    action: list = field(default_factory=list)  # (23,) raw
    shaped: list = field(default_factory=list)  # (29,) motor order
    command: list = field(default_factory=list)  # (29,) the target the motors track at the end of the period
    qpos: list = field(default_factory=list)  # after the cycle's 20 ms of physics

    def arrays(self) -> dict[str, np.ndarray]:
        return {s: np.asarray(v) for s, v in zip(STAGES, (self.state, self.obs, self.action, self.shaped,
                                                           self.command, self.qpos), strict=True)}


@pytest.fixture(scope="module")
def lib():
    return library(1, seconds=4.0)  # 200 frames: 150 cycles stay inside the clip


@pytest.fixture(scope="module")
def small_action_policy(tmp_path_factory):
    """A tiny MLP student whose action is small (|a| < 0.1) but depends on the whole observation."""
    from train.export import export_student
    from train.student import StudentConfig, build_student

    torch.manual_seed(0)
    st = build_student(StudentConfig(kind="mlp", width=32, blocks=1))
    with torch.no_grad():
        st.normalizer.std.fill_(10.0)
        st.net[-1].weight.mul_(0.3)
        st.net[-1].bias.zero_()
    path = tmp_path_factory.mktemp("small") / "small.onnx"
    return export_student(st, path, {"vae_id": VAE, "vlm_id": VLM})


def run_env(policy: OnnxPolicy, lib, delay_s: float, monkeypatch) -> tuple[Trace, dict]:
    """Env side; its terminations are recorded in `failed` but not acted on (no auto-reset mid-run)."""
    failed, real = [], terminations.terminated

    def never(*args):
        term = real(*args)
        failed.append(bool(term["deviation"][0] or term["tilt"][0]))
        return {k: np.zeros_like(v) for k, v in term.items()}

    monkeypatch.setattr(tracking_env.terminations, "terminated", never)
    env = TrackingEnv(lib, EnvConfig(num_envs=1).evaluation("sim2sim"))
    env.params.delay_steps[:] = int(round(delay_s / env.sim.physics_dt_s))
    env.reset(np.arange(1), clips=np.zeros(1, dtype=int), frames=np.zeros(1, dtype=int))
    start = env.datas[0].qpos.copy(), env.datas[0].qvel.copy()
    tr, d = Trace(), env.datas[0]
    slot = 0 if env.params.delay_steps[0] < env.sim.decimation else 1  # what the last physics step applies
    inner = env._physics

    def physics() -> None:  # records between the shaping and the auto-reset of a finished episode
        tr.state.append(d.qpos[env.ix.motor_qpos_adr].copy())
        tr.shaped.append(env.targets[0, 0].copy())
        tr.command.append(env.targets[0, slot].copy())
        inner()
        tr.qpos.append(d.qpos.copy())

    env._physics = physics
    obs = env.get_observations()
    metrics = []
    for _ in range(CYCLES):
        o = obs["student"].numpy()
        a = policy.act(o, np.zeros((1, g1.N_ACT)))
        tr.obs.append(o[0])
        tr.action.append(np.asarray(a, np.float64))
        obs, _, done, extras = env.step(torch.as_tensor(a[None]))
        metrics.append((extras["metrics"]["mpjpe_rad"][0], extras["metrics"]["mpkpe_m"][0], failed[-1]))
        assert not done[0]
    monkeypatch.undo()
    return tr, {"start": start, "metrics": metrics, "clipped": env.clipped.total()}


def run_deploy(policy: OnnxPolicy, lib, latency_s: float, start: tuple[np.ndarray, np.ndarray],
               cycles: int, wire_f32: bool = False) -> tuple[Trace, dict[str, int]]:
    clock = FakeClock()
    sim = SimBackend(clock, latency_s=(latency_s, latency_s), wire_f32=wire_f32)
    sim.set_state(*start)
    kp29, kd29 = motor_gains(policy.kp, policy.kd)
    sim.cmd = build_lowcmd(start[0][sim.qadr], kp29, kd29, 0)  # the env's delay line holds the reset pose
    box = LatentBox(policy.latent_dim, policy)
    safety = SafetyConfig(ramp_s=0.0, fall_tilt_rad=None, fall_pelvis_height_m=None)
    rt = Runtime(policy, sim, clock, box, RuntimeConfig(safety=safety))
    tr = Trace()
    for _ in range(cycles):
        box.put(LatentSample(lib.latents[0], clock.now(), VAE, VLM))  # the intent side keeps it fresh
        rt.cycle()
        assert rt.safety.mode.value == "policy", rt.safety.transitions
        tr.state.append(rt.last_q29.copy())
        tr.obs.append(rt.last_obs[0])
        tr.action.append(rt.last_raw_action.copy())
        tr.shaped.append(rt.prev_target.copy())
        sim.read_state()  # physics up to the next cycle's start
        tr.command.append(sim.cmd.q[:len(g1.G1_29DOF_JOINTS)].copy())
        tr.qpos.append(sim.d.qpos.copy())
    return tr, rt.clipped.total()


def tracking(model: mujoco.MjModel, lib, qpos: np.ndarray) -> dict:
    """Succ, E_mpjpe, E_mpkpe of a qpos trajectory against clip 0 from frame 1, as train/sim2sim.py counts them:
    errors averaged over the steps tracked, up to and including the first failure."""
    ix, d = ModelIndex.of(model), mujoco.MjData(model)
    ref = lib.frame(np.zeros(len(qpos), dtype=int), np.arange(1, len(qpos) + 1))
    mpjpe, mpkpe, failed = [], [], []
    for k, q in enumerate(qpos):
        d.qpos[:] = q
        mujoco.mj_kinematics(model, d)
        kp, _ = keypoints_w(ix, d)
        mpjpe.append(np.abs(q[ix.qpos_adr] - ref["joint_pos"][k]).mean())
        mpkpe.append(terminations.mean_keypoint_deviation(kp[None], ref["kp_pos"][k:k + 1])[0])
        term = terminations.terminated(kp[None], ref["kp_pos"][k:k + 1], q[None, 3:7], ref["root_quat"][k:k + 1],
                                       terminations.SUCC_MAX_DEVIATION_M)
        failed.append(bool(term["deviation"][0] or term["tilt"][0]))
        if failed[-1]:
            break
    return {"succ": not any(failed), "mpjpe_rad": float(np.mean(mpjpe)), "mpkpe_m": float(np.mean(mpkpe)),
            "steps": len(mpjpe), "per_step": (np.array(mpjpe), np.array(mpkpe))}


def first_divergence(a: Trace, b: Trace, tol: dict[str, float]) -> tuple[int, str, float] | None:
    """The first cycle, and within it the first stage (in data-flow order), where the traces differ."""
    xa, xb = a.arrays(), b.arrays()
    n = min(len(v) for v in (*xa.values(), *xb.values()))
    for k in range(n):
        for s in STAGES:
            gap = float(np.max(np.abs(xa[s][k] - xb[s][k])))
            if not gap <= tol[s]:
                return k, s, gap
    return None


def _tol() -> dict[str, float]:
    return {"state read": JOINT_TOL_RAD, "observation": OBS_TOL, "action": 0.0, "shaping": JOINT_TOL_RAD,
            "command": JOINT_TOL_RAD, "physics": JOINT_TOL_RAD}


def _compare(policy_path, lib, latency_s: float, monkeypatch) -> dict:
    policy = OnnxPolicy(policy_path)
    env_tr, info = run_env(policy, lib, latency_s, monkeypatch)
    dep_tr, clipped = run_deploy(policy, lib, latency_s, info["start"], CYCLES)
    where = first_divergence(env_tr, dep_tr, _tol())
    assert where is None, (f"env and deploy part at {latency_s * 1e3:.0f} ms latency: cycle {where[0]}, stage "
                           f"{where[1]!r} (max |diff| {where[2]:.3g}; stages in order {STAGES})")
    model = TrackingEnv(lib, EnvConfig(num_envs=1).evaluation("sim2sim")).model
    env_m, dep_m = tracking(model, lib, np.asarray(env_tr.qpos)), tracking(model, lib, np.asarray(dep_tr.qpos))
    # our metric reproduces the env's own, so the deploy run is scored the way train/sim2sim.py scores the env
    own = np.array(info["metrics"])
    steps = env_m["steps"]
    assert np.allclose(env_m["per_step"][0], own[:steps, 0], atol=1e-12)
    assert np.allclose(env_m["per_step"][1], own[:steps, 1], atol=1e-12)
    assert env_m["succ"] == (not own[:, 2].any()) and (env_m["succ"] or own[steps - 1, 2])
    for k in ("succ", "mpjpe_rad", "mpkpe_m", "steps"):
        assert env_m[k] == pytest.approx(dep_m[k], abs=1e-9), k
    joints = np.abs(np.asarray(env_tr.qpos) - np.asarray(dep_tr.qpos)).max()
    assert len(env_tr.qpos) == len(dep_tr.qpos) == CYCLES and joints <= JOINT_TOL_RAD
    assert clipped == info["clipped"]  # the same stages bound the same number of times
    return {"env": env_m, "clipped": clipped}


@pytest.mark.parametrize("latency_s", LATENCIES_S)
def test_a_small_action_policy_gives_the_same_trajectory_in_the_env_and_through_the_runtime(
        small_action_policy, lib, latency_s, monkeypatch):
    out = _compare(small_action_policy, lib, latency_s, monkeypatch)
    assert not any(out["clipped"].values())  # small actions: the shaping never binds


@pytest.mark.parametrize("latency_s", LATENCIES_S)
def test_a_random_policy_falls_the_same_way_in_the_env_and_through_the_runtime(small_policy, lib, latency_s,
                                                                               monkeypatch):
    out = _compare(small_policy, lib, latency_s, monkeypatch)
    assert not out["env"]["succ"] and sum(out["clipped"].values()) > 0  # it falls, and the shaping bound on both


def test_a_divergence_is_named_by_its_first_cycle_and_stage(small_action_policy, lib, monkeypatch):
    """The diagnosis names real mismatches where they enter: the robot's float32 wire at the state read,
    a command latency other than the env's delay at the command."""
    policy = OnnxPolicy(small_action_policy)
    env_tr, info = run_env(policy, lib, 0.0, monkeypatch)
    f32, _ = run_deploy(policy, lib, 0.0, info["start"], 10, wire_f32=True)
    assert first_divergence(env_tr, f32, _tol())[:2] == (0, "state read")
    late, _ = run_deploy(policy, lib, 0.02, info["start"], 10)
    assert first_divergence(env_tr, late, _tol())[:2] == (0, "command")
