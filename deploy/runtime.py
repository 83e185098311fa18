"""The robot runtime: a 50 Hz loop from the low state and the newest motion latent to a LowCmd.

Imports only numpy, onnxruntime and robomirror.g1_contract (plus the backend's transport), so it
runs on a Jetson (onnxruntime-gpu: CUDA / TensorRT providers) as on this CPU. One clock object drives
it: `RealClock` on a robot, `FakeClock` in tests (no sleeps). The policy loop never waits on the VLM:
the intent side delivers latents into a `LatentBox` whenever they are ready.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from deploy.lowcmd import N_SLOTS, LowCmd, LowState
from deploy.safety import Mode, Safety, SafetyConfig
from robomirror import g1_contract as g1


class DeployError(Exception):
    """A policy, latent or backend the runtime must refuse (with what was expected)."""


# --------------------------------------------------------------------------------------------- clocks
class Clock(Protocol):
    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        while True:
            left = t - time.monotonic()
            if left <= 0:
                return
            time.sleep(left - 0.0005 if left > 0.001 else 0)  # sleep most of it, spin the last half ms


class FakeClock:
    """Deterministic time for tests: `sleep_until` jumps; `compute_s` is what each cycle 'costs'."""

    def __init__(self, t0: float = 0.0) -> None:
        self.t = t0
        self.compute_s = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)


# --------------------------------------------------------------------------------------------- policy
class OnnxPolicy:
    """The exported student; its metadata is the contract it was trained under."""

    def __init__(self, path, providers: list[str] | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), so, providers=providers or ["CPUExecutionProvider"])
        self.meta = {k: json.loads(v) for k, v in self.session.get_modelmeta().custom_metadata_map.items()}
        self.check_contract()
        self.latent_dim = int(self.meta["obs_layout"][0][1])
        self.kp, self.kd = np.asarray(self.meta["kp"]), np.asarray(self.meta["kd"])

    def check_contract(self) -> None:
        m = self.meta
        if m.get("joint_names") != list(g1.POLICY_JOINTS):
            raise DeployError(f"policy joint order {m.get('joint_names', '?')[:2]}... differs from the contract's "
                              f"{list(g1.POLICY_JOINTS[:2])}...; re-export the policy with this code")
        dim = m["obs_layout"][0][1] if m.get("obs_layout") else None
        if m.get("obs_layout") != g1.student_obs(dim or 0).as_json():
            raise DeployError("policy observation layout differs from robomirror.g1_contract.student_obs: re-export it")
        for key, want in (("default_joint_pos_rad", g1.DEFAULT_JOINT_POS_RAD), ("action_scale", g1.ACTION_SCALE)):
            if not np.allclose(m[key], want):
                raise DeployError(f"policy {key} differs from the contract's; re-export it")

    def check_models(self, vae_id: str | None, vlm_id: str | None) -> None:
        """Refuse latents from other models than the policy was trained on."""
        for key, got in (("vae_id", vae_id), ("vlm_id", vlm_id)):
            want = self.meta.get(key)
            if want and got and want != got:
                raise DeployError(f"the motion latents come from {key} {got}, but the policy was trained with {want}: "
                                  "use the policy of a run on this store (make policy) or the matching intent models")

    def act(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return self.session.run(["action"], {"obs": obs.astype(np.float32), "noise": noise.astype(np.float32)})[0][0]


# --------------------------------------------------------------------------------------------- latents
@dataclass
class LatentSample:
    latent: np.ndarray
    received_s: float  # runtime clock
    vae_id: str = ""
    vlm_id: str = ""
    dit_id: str = ""
    stage_ms: tuple[float, ...] = ()


class LatentBox:
    """The newest motion latent, written by the transport thread, read by the loop (never blocks it)."""

    def __init__(self, dim: int, policy: OnnxPolicy | None = None) -> None:
        self.dim, self.policy = dim, policy
        self._lock = threading.Lock()
        self._latest: LatentSample | None = None
        self.rejected: list[str] = []
        self.received = 0

    def put(self, s: LatentSample) -> bool:
        reason = None
        if s.latent.shape != (self.dim,):
            reason = f"latent of shape {s.latent.shape}, expected ({self.dim},)"
        elif not np.all(np.isfinite(s.latent)):
            reason = "latent has NaN/inf values"
        elif self.policy is not None:
            try:
                self.policy.check_models(s.vae_id, s.vlm_id)
            except DeployError as e:
                reason = str(e)
        if reason:
            self.rejected.append(reason)
            return False
        with self._lock:
            self._latest = s
            self.received += 1
        return True

    def latest(self) -> LatentSample | None:
        with self._lock:
            return self._latest


# --------------------------------------------------------------------------------------------- backend
class Backend(Protocol):
    def read_state(self) -> LowState: ...

    def send(self, cmd: LowCmd) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------- loop
@dataclass(frozen=True)
class RuntimeConfig:
    hz: float = g1.POLICY_HZ
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    noise: str = "zeros"  # DDIM start: "zeros" (deterministic) or "normal"
    seed: int = 0


@dataclass
class CycleRecord:
    t_s: float
    mode: str
    compute_ms: float
    period_ms: float | None
    latent_age_s: float | None


def _cleared_lowcmd(mode_machine: int) -> LowCmd:
    """All 35 slots zeroed, the G1's 29 motors enabled."""
    cmd = LowCmd(mode_pr=0, mode_machine=mode_machine)
    cmd.mode[:], cmd.q[:], cmd.dq[:], cmd.tau[:], cmd.kp[:], cmd.kd[:] = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    cmd.mode[: len(g1.G1_29DOF_JOINTS)] = 1
    return cmd


def damping_lowcmd(q_policy: np.ndarray, kd: float, mode_machine: int) -> LowCmd:
    """DAMPING: kp = 0 and the same kd on every motor; q holds the measured pose (ignored at kp = 0)."""
    cmd = _cleared_lowcmd(mode_machine)
    cmd.kd[: len(g1.G1_29DOF_JOINTS)] = kd
    cmd.q[g1.POLICY_TO_MOTOR] = q_policy
    return cmd


def build_lowcmd(target: np.ndarray, kp: np.ndarray, kd: np.ndarray, mode_machine: int) -> LowCmd:
    """Every one of the 35 slots set: policy joints, locked wrists at their pose with their own gains,
    unused slots disabled (mode 0, zero gains)."""
    cmd = _cleared_lowcmd(mode_machine)
    cmd.q[g1.POLICY_TO_MOTOR], cmd.kp[g1.POLICY_TO_MOTOR], cmd.kd[g1.POLICY_TO_MOTOR] = target, kp, kd
    cmd.q[g1.LOCKED_TO_MOTOR] = g1.LOCKED_JOINT_POS_RAD
    cmd.kp[g1.LOCKED_TO_MOTOR], cmd.kd[g1.LOCKED_TO_MOTOR] = g1.LOCKED_KP, g1.LOCKED_KD
    return cmd


class Runtime:
    def __init__(self, policy: OnnxPolicy, backend: Backend, clock: Clock, latents: LatentBox,
                 cfg: RuntimeConfig = RuntimeConfig()) -> None:
        self.policy, self.backend, self.clock, self.latents, self.cfg = policy, backend, clock, latents, cfg
        self.dt = 1.0 / cfg.hz
        self.safety = Safety(cfg.safety)
        self.history = g1.ProprioHistory(1, 1 + g1.STUDENT_HISTORY)
        self.last_action = np.zeros(g1.N_ACT)
        self.prev_target: np.ndarray | None = None
        self.ramp_from: np.ndarray | None = None
        self.t_start: float | None = None
        self.next_t: float | None = None
        self.records: list[CycleRecord] = []
        self.rng = np.random.default_rng(cfg.seed)
        self.estop_requested = False
        self.first_policy_s: float | None = None
        self.last_obs: np.ndarray | None = None
        self.on_policy: list = []  # called once, when the loop first enters POLICY (e.g. release the sim's band)

    def estop(self) -> None:
        self.estop_requested = True

    def reset(self) -> None:
        """The operator's reset: clears the e-stop and the latched damping; the ramp starts again."""
        self.estop_requested = False
        self.safety.reset(self.clock.now())
        self.t_start, self.ramp_from, self.prev_target = None, None, None

    def _latent(self, t: float) -> tuple[LatentSample | None, float | None]:
        s = self.latents.latest()
        return s, (None if s is None else t - s.received_s)

    def cycle(self) -> CycleRecord:
        t = self.clock.now()
        if self.next_t is None:
            self.next_t = t
        st = self.backend.read_state()
        q = np.asarray(st.q, dtype=np.float64)[g1.POLICY_TO_MOTOR]
        dq = np.asarray(st.dq, dtype=np.float64)[g1.POLICY_TO_MOTOR]
        gyro, quat = np.asarray(st.imu_gyro_b, np.float64), np.asarray(st.imu_quat_wxyz, np.float64)
        s = self.safety
        s.check_state(st.tick, [q, dq, gyro, quat], t)
        if self.estop_requested:
            s.fault("e-stop", t)
        frame = g1.proprio_frame(q, dq, self.last_action, gyro, quat)[None]
        if self.t_start is None:
            self.t_start, self.ramp_from = t, np.where(np.isfinite(q), q, g1.DEFAULT_JOINT_POS_RAD)
            self.prev_target = self.ramp_from.copy()
            self.history.fill([0], frame)
        else:
            self.history.push(frame)
        latent, age = self._latent(t)
        fresh = age is not None and age <= s.cfg.latent_stale_s
        target = g1.DEFAULT_JOINT_POS_RAD
        if s.mode == Mode.RAMP:
            a = min(1.0, (t - self.t_start) / s.cfg.ramp_s)
            target = self.ramp_from + a * (g1.DEFAULT_JOINT_POS_RAD - self.ramp_from)
            if a >= 1.0:
                s.to(Mode.POLICY if fresh else Mode.HOLD, "start-up ramp done" + ("" if fresh else
                     ": no fresh motion latent, holding the default pose"), t)
        elif s.mode in (Mode.POLICY, Mode.HOLD):
            if not fresh:
                s.to(Mode.HOLD, "no motion latent yet: holding the default pose" if age is None else
                     f"motion latent stale ({age:.2f} s > {s.cfg.latent_stale_s} s): holding the default pose", t)
            else:
                s.to(Mode.POLICY, f"fresh motion latent (age {age:.2f} s)", t)
        if s.mode == Mode.POLICY:
            obs = g1.student_observation(latent.latent, self.history).astype(np.float32)
            self.last_obs = obs
            if s.check_finite("observation", obs, t):
                noise = (np.zeros((1, g1.N_ACT)) if self.cfg.noise == "zeros"
                         else self.rng.standard_normal((1, g1.N_ACT)))
                action = self.policy.act(obs, noise)
                if s.check_finite("action", action, t):
                    target = g1.target_from_action(action)
                    if self.first_policy_s is None:
                        self.first_policy_s = t
                        for f in self.on_policy:
                            f()
        if s.mode == Mode.DAMPING:
            q_safe = np.where(np.isfinite(q), q, 0.0)
            cmd = damping_lowcmd(q_safe, s.cfg.damping_kd, st.mode_machine)
            self.last_action = g1.action_from_target(q_safe)
        else:
            target = s.shape(target, self.prev_target, q, dq, self.policy.kp, self.policy.kd, self.dt)
            self.prev_target = target
            self.last_action = g1.action_from_target(target)
            cmd = build_lowcmd(target, self.policy.kp, self.policy.kd, st.mode_machine)
        self.backend.send(cmd)
        compute = self.clock.now() - t + getattr(self.clock, "compute_s", 0.0)
        s.deadline(compute > self.dt, compute * 1e3, t)
        prev = self.records[-1].t_s if self.records else None
        rec = CycleRecord(t, s.mode.value, compute * 1e3, None if prev is None else (t - prev) * 1e3, age)
        self.records.append(rec)
        self.next_t += self.dt
        self.clock.sleep_until(self.next_t)
        return rec

    def run(self, seconds: float) -> list[CycleRecord]:
        for _ in range(int(round(seconds * self.cfg.hz))):
            self.cycle()
        return self.records


def damping_slots_ok(cmd: LowCmd, damping_kd: float) -> bool:
    used = len(g1.G1_29DOF_JOINTS)
    return bool(np.all(cmd.kp == 0) and np.allclose(cmd.kd[:used], damping_kd) and not cmd.unset_slots()
                and len(cmd.q) == N_SLOTS)
