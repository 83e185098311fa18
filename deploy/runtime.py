"""The robot runtime: a 50 Hz loop from the low state and the newest motion latent to a LowCmd.

Imports only numpy, onnxruntime and robomirror's numpy-only G1 modules (plus the backend's
transport), so it runs on a Jetson (onnxruntime-gpu: CUDA / TensorRT providers) as on this CPU. One
clock object drives it: `RealClock` on a robot, `FakeClock` in tests (no sleeps). The policy loop
never waits on the VLM: the intent side delivers latents into a `LatentBox` whenever they are ready.

The rule, kept by structure: `Runtime.cycle` runs the whole cycle (read, checks, policy, shaping,
send, sleep) inside one `try`; any exception there, Ctrl-C and SIGTERM included, sends a damping
command on the wire in that same call, latches the fault with its reason, and only then propagates
as `RuntimeFault`. `run_cycles` turns that into the process's exit status (EXIT_*), so a fault
never ends a run with 0.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from deploy.lowcmd import N_SLOTS, LowCmd, LowState
from deploy.safety import Mode, Safety, SafetyConfig
from robomirror import g1_contract as g1
from robomirror.g1_shaping import ClipCounter, Shaping, motor_gains, motor_targets

N_MOTORS = len(g1.G1_29DOF_JOINTS)
EXIT_OK, EXIT_EXCEPTION, EXIT_REFUSED, EXIT_DAMPED, EXIT_INTENT_DIED = 0, 1, 2, 3, 4
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class DeployError(Exception):
    """A policy, latent or backend the runtime must refuse (with what was expected)."""


class Shutdown(Exception):
    """SIGTERM, raised in the main thread so the cycle in progress sends damping first."""


class RuntimeFault(Exception):
    """Raised by `Runtime.cycle` after the damping command for an exception has been sent."""

    def __init__(self, reason: str, damping_sent: bool, cause: BaseException) -> None:
        super().__init__(reason + ("" if damping_sent else " (and the damping command could not be sent)"))
        self.reason, self.damping_sent, self.cause = reason, damping_sent, cause

    @property
    def exit_code(self) -> int:
        if isinstance(self.cause, KeyboardInterrupt):
            return EXIT_SIGINT
        return EXIT_SIGTERM if isinstance(self.cause, Shutdown) else EXIT_EXCEPTION


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
    """Deterministic time for tests: `sleep_until` jumps; `compute_s` is what each cycle 'costs';
    `wake_late_s` is how late every wake-up comes (a busy machine)."""

    def __init__(self, t0: float = 0.0) -> None:
        self.t = t0
        self.compute_s = 0.0
        self.wake_late_s = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t) + self.wake_late_s


# --------------------------------------------------------------------------------------------- policy
REQUIRED_METADATA = ("joint_names", "obs_layout", "default_joint_pos_rad", "action_scale", "kp", "kd",
                     "locked_joints", "locked_kp", "locked_kd")


class OnnxPolicy:
    """The exported student; its metadata is the contract it was trained under, checked in full at
    load: nothing from it goes on the wire unchecked."""

    def __init__(self, path, providers: list[str] | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise DeployError(f"policy {self.path}: no such file (expected an ONNX export of `make policy`)")
        if self.path.stat().st_size == 0:
            raise DeployError(f"policy {self.path} is empty (expected an ONNX export of `make policy`)")
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for every way a file is bad
            raise DeployError(f"policy {self.path} is not a loadable ONNX model: {str(e).splitlines()[0][:200]}") from e
        raw = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in REQUIRED_METADATA if k not in raw]
        if missing:
            raise DeployError(f"policy {self.path.name}: metadata keys {missing} missing; export it with "
                              "train.export (make policy), which writes every key the runtime checks")
        self.meta = {}
        for k, v in raw.items():
            try:
                self.meta[k] = json.loads(v)
            except (json.JSONDecodeError, TypeError) as e:
                raise DeployError(f"policy {self.path.name}: metadata {k!r} is not JSON ({v[:40]!r})") from e
        self.check_contract()
        from deploy.mjlab_policy import check_agrees_with_ours, contract_from_metadata  # mjlab's keys, one check

        check_agrees_with_ours(contract_from_metadata(raw, self.path.name), self.meta, self.path.name)
        self.latent_dim = int(self.meta["obs_layout"][0][1])
        self.kp, self.kd = np.asarray(self.meta["kp"], np.float64), np.asarray(self.meta["kd"], np.float64)
        self.check_io()

    def check_contract(self) -> None:
        m = self.meta
        if m.get("joint_names") != list(g1.POLICY_JOINTS):
            names = m.get("joint_names") if isinstance(m.get("joint_names"), list) else ["?"]
            raise DeployError(f"policy joint order {names[:2]}... differs from the contract's "
                              f"{list(g1.POLICY_JOINTS[:2])}...; re-export the policy with this code")
        layout = m.get("obs_layout")
        try:
            dim = int(layout[0][1])
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise DeployError(f"policy obs_layout {str(layout)[:60]} is not a list of [name, size]") from e
        if g1.has_height_map(layout):
            raise DeployError(
                f"policy {self.path.name} asks for the observation {g1.HEIGHT_MAP_TERM!r} ({g1.HEIGHT_MAP_DIM} values: "
                "the terrain height map around the root), but this runtime has no height source (no terrain sensing "
                "on the robot): refused; deploy a policy trained and exported without it (StudentConfig.height_map "
                "False)")
        if layout != g1.student_obs(dim).as_json():
            raise DeployError("policy observation layout differs from robomirror.g1_contract.student_obs: re-export it")
        if m.get("locked_joints") != list(g1.WRIST_JOINTS):
            raise DeployError(f"policy locked joints {m.get('locked_joints')} differ from the contract's wrists")
        for key, want in (("default_joint_pos_rad", g1.DEFAULT_JOINT_POS_RAD), ("action_scale", g1.ACTION_SCALE),
                          ("locked_kp", g1.LOCKED_KP), ("locked_kd", g1.LOCKED_KD)):
            got = _floats(m[key], key, want.shape)
            if not np.allclose(got, want):
                raise DeployError(f"policy {key} differs from the contract's; re-export it")
        kp, kd = _floats(m["kp"], "kp", (g1.N_ACT,)), _floats(m["kd"], "kd", (g1.N_ACT,))
        kp_max, kd_max = g1.gain_bounds(g1.ARMATURE)
        for name, x, lo, hi, strict in (("kp", kp, 0.0, kp_max, True), ("kd", kd, 0.0, kd_max, False)):
            bad = np.flatnonzero(~((x > lo) if strict else (x >= lo)) | (x > hi))
            if len(bad):
                j = bad[0]
                raise DeployError(
                    f"policy {name} of {g1.POLICY_JOINTS[j]} is {x[j]:.3f}, outside the robot's range "
                    f"{'(' if strict else '['}0, {hi[j]:.1f}] (natural frequency <= {g1.MAX_NATURAL_FREQ_HZ} Hz, "
                    f"damping ratio <= {g1.MAX_DAMPING_RATIO} for this motor's armature): refused")

    def check_io(self) -> None:
        """The graph's inputs and output agree with the metadata: checked by name, shape and one dry run."""
        want_obs = g1.student_obs(self.latent_dim).dim
        ins = {i.name: i.shape for i in self.session.get_inputs()}
        outs = {o.name: o.shape for o in self.session.get_outputs()}
        if set(ins) != {"obs", "noise"} or "action" not in outs:
            raise DeployError(f"policy graph has inputs {sorted(ins)} and outputs {sorted(outs)}; expected inputs "
                              "obs, noise and output action")
        for name, shape, want in (("obs", ins["obs"], want_obs), ("noise", ins["noise"], g1.N_ACT),
                                  ("action", outs["action"], g1.N_ACT)):
            last = shape[-1] if shape else None
            if isinstance(last, int) and last != want:
                raise DeployError(f"policy {name} has size {last}, the metadata says {want} (obs_layout / 23 joints)")
        try:
            a = self.act(np.zeros((1, want_obs), np.float32), np.zeros((1, g1.N_ACT), np.float32))
        except Exception as e:  # noqa: BLE001
            raise DeployError(f"policy failed a dry run on an observation of the metadata's size {want_obs}: "
                              f"{str(e).splitlines()[0][:200]}") from e
        if a.shape != (g1.N_ACT,) or not np.all(np.isfinite(a)):
            raise DeployError(f"policy dry run gave an action of shape {a.shape} (finite: {np.all(np.isfinite(a))}); "
                              f"expected {g1.N_ACT} finite values")

    def check_models(self, vae_id: str | None, vlm_id: str | None) -> None:
        """Refuse latents from other models than the policy was trained on (or that do not say)."""
        for key, got in (("vae_id", vae_id), ("vlm_id", vlm_id)):
            want = self.meta.get(key)
            if want and not got:
                raise DeployError(f"the motion latent carries no {key}; the policy was trained with {want}")
            if want and got != want:
                raise DeployError(f"the motion latents come from {key} {got}, but the policy was trained with {want}: "
                                  "use the policy of a run on this store (make policy) or the matching intent models")

    def act(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return self.session.run(["action"], {"obs": obs.astype(np.float32), "noise": noise.astype(np.float32)})[0][0]


def _floats(x, key: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DeployError(f"policy metadata {key!r} is not numbers") from e
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise DeployError(f"policy metadata {key!r} has shape {a.shape} (finite: {np.all(np.isfinite(a))}); "
                          f"expected {shape} finite values")
    return a


# --------------------------------------------------------------------------------------------- latents
@dataclass
class LatentSample:
    latent: np.ndarray
    received_s: float  # runtime clock
    vae_id: str = ""
    vlm_id: str = ""
    dit_id: str = ""
    stage_ms: tuple[float, ...] = ()
    sent_wall_s: float | None = None  # the sender's wall-clock stamp, when the transport has one


class LatentBox:
    """The newest motion latent, written by the transport thread, read by the loop (never blocks it).
    A bad latent is refused with its reason and never replaces a good one."""

    def __init__(self, dim: int, policy: OnnxPolicy | None = None, stale_s: float = 1.0, future_s: float = 0.5,
                 wall: Callable[[], float] = time.time) -> None:
        self.dim, self.policy, self.stale_s, self.future_s, self.wall = dim, policy, stale_s, future_s, wall
        self._lock = threading.Lock()
        self._latest: LatentSample | None = None
        self.rejected: list[str] = []
        self.n_rejected = 0
        self.received = 0

    def reject(self, reason: str) -> None:
        with self._lock:
            self.n_rejected += 1
            if len(self.rejected) < 100:
                self.rejected.append(reason)

    def put(self, s: LatentSample) -> bool:
        reason = None
        latent = np.asarray(s.latent)
        if latent.shape != (self.dim,):
            reason = f"latent of shape {latent.shape}, expected ({self.dim},)"
        elif not np.all(np.isfinite(latent)):
            reason = "latent has NaN/inf values"
        elif s.sent_wall_s is not None and (ahead := s.sent_wall_s - self.wall()) > self.future_s:
            reason = f"latent stamped {ahead:.2f} s in the future (more than {self.future_s} s: clocks out of sync?)"
        elif s.sent_wall_s is not None and -ahead > self.stale_s:
            reason = f"latent already {-ahead:.2f} s old on arrival (more than {self.stale_s} s)"
        elif self.policy is not None:
            try:
                self.policy.check_models(s.vae_id, s.vlm_id)
            except DeployError as e:
                reason = str(e)
        if reason:
            self.reject(reason)
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
    late_ms: float = 0.0


def _cleared_lowcmd(mode_machine: int) -> LowCmd:
    """All 35 slots zeroed, the G1's 29 motors enabled."""
    cmd = LowCmd(mode_pr=0, mode_machine=mode_machine)
    cmd.mode[:], cmd.q[:], cmd.dq[:], cmd.tau[:], cmd.kp[:], cmd.kd[:] = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    cmd.mode[:N_MOTORS] = 1
    return cmd


def damping_lowcmd(q_motor: np.ndarray, kd: float, mode_machine: int) -> LowCmd:
    """DAMPING: kp = 0 and the same kd on every motor; q holds the measured pose clamped into the joint
    ranges (ignored at kp = 0, but nothing out of range goes on the wire).
    q_motor: (29,) motor order, or (23,) policy order (wrists then at their locked pose)."""
    cmd = _cleared_lowcmd(mode_machine)
    cmd.kd[:N_MOTORS] = kd
    q = np.asarray(q_motor, dtype=np.float64)
    if len(q) == g1.N_ACT:
        q = g1.motor_vector(q, g1.LOCKED_JOINT_POS_RAD)
    q = np.where(np.isfinite(q), q, g1.MOTOR_DEFAULT_POS_RAD)
    cmd.q[:N_MOTORS] = np.clip(q, g1.MOTOR_RANGE_RAD[:, 0], g1.MOTOR_RANGE_RAD[:, 1])
    return cmd


def build_lowcmd(target: np.ndarray, kp: np.ndarray, kd: np.ndarray, mode_machine: int) -> LowCmd:
    """Every one of the 35 slots set. (29,) motor-order targets and gains, or (23,) policy-order ones
    (the wrists then held at their locked pose with their own gains); unused slots disabled."""
    target, kp, kd = (np.asarray(x, dtype=np.float64) for x in (target, kp, kd))
    if len(target) == g1.N_ACT:
        target = g1.motor_vector(target, g1.LOCKED_JOINT_POS_RAD)
        kp, kd = motor_gains(kp, kd)
    cmd = _cleared_lowcmd(mode_machine)
    cmd.q[:N_MOTORS], cmd.kp[:N_MOTORS], cmd.kd[:N_MOTORS] = target, kp, kd
    return cmd


def _mode_machine(x) -> int:
    return int(x) & 0xFF  # uint8 on the wire


class Runtime:
    def __init__(self, policy: OnnxPolicy, backend: Backend, clock: Clock, latents: LatentBox,
                 cfg: RuntimeConfig = RuntimeConfig()) -> None:
        self.policy, self.backend, self.clock, self.latents, self.cfg = policy, backend, clock, latents, cfg
        self.dt = 1.0 / cfg.hz
        self.safety = Safety(cfg.safety)
        self.shaping = Shaping(cfg.safety.shaping)
        self.clipped = ClipCounter()
        self.kp29, self.kd29 = motor_gains(policy.kp, policy.kd)
        self.history = g1.ProprioHistory(1, 1 + g1.STUDENT_HISTORY)
        self.last_action = np.zeros(g1.N_ACT)
        self.prev_target: np.ndarray | None = None  # (29,) the last shaped motor targets
        self.ramp_from: np.ndarray | None = None
        self.t_start: float | None = None
        self.next_t: float | None = None
        self.records: list[CycleRecord] = []
        self.rng = np.random.default_rng(cfg.seed)
        self.estop_requested = False
        self.first_policy_s: float | None = None
        self.last_obs: np.ndarray | None = None
        self.last_raw_action: np.ndarray | None = None
        self.last_q29: np.ndarray | None = None
        self.mode_machine = 0
        self.late_s = 0.0  # how late this cycle woke, against its schedule
        self.rephased = 0  # stalls after which the schedule restarted from the wake-up time
        self.fatal: RuntimeFault | None = None
        self.on_policy: list = []  # called once, when the loop first enters POLICY (e.g. release the sim's band)
        self.stage = "start"

    def estop(self) -> None:
        self.estop_requested = True

    def reset(self) -> None:
        """The operator's reset: clears the e-stop and the latched damping; the ramp starts again."""
        self.estop_requested, self.fatal = False, None
        self.safety.reset(self.clock.now())
        self.t_start, self.ramp_from, self.prev_target = None, None, None

    def _latent(self, t: float) -> tuple[LatentSample | None, float | None]:
        s = self.latents.latest()
        return s, (None if s is None else t - s.received_s)

    def cycle(self) -> CycleRecord:
        """One cycle, then the sleep to the next. Any exception (Ctrl-C and SIGTERM included) sends damping
        before it leaves, as RuntimeFault."""
        t = self.clock.now()
        try:
            rec = self._cycle(t)
            self.stage = "sleep"
            self._sleep()
            return rec
        except BaseException as e:  # noqa: BLE001 - the fail-safe: nothing leaves a cycle without damping
            raise self._fail_safe(e, t) from e

    def _fail_safe(self, e: BaseException, t: float) -> RuntimeFault:
        what = {KeyboardInterrupt: "interrupted (Ctrl-C)", Shutdown: "terminated (SIGTERM)"}.get(type(e))
        reason = what or f"{type(e).__name__} in the cycle's {self.stage}: {e}"
        self.safety.fault(reason, t)
        q = self.last_q29 if self.last_q29 is not None else g1.MOTOR_DEFAULT_POS_RAD
        sent = False
        try:
            self.backend.send(damping_lowcmd(q, self.safety.cfg.damping_kd, self.mode_machine))
            sent = True
        except BaseException:  # noqa: BLE001 - reported in the fault's message
            pass
        self.fatal = RuntimeFault(reason, sent, e)
        return self.fatal

    def _sleep(self) -> None:
        self.next_t += self.dt
        self.clock.sleep_until(self.next_t)

    def _cycle(self, t: float) -> CycleRecord:
        s = self.safety
        if self.next_t is None:
            self.next_t = t
        self.late_s = max(0.0, t - self.next_t)  # from the actual wake-up: a stall anywhere shows here
        if self.late_s > self.dt:  # a stall: re-phase the schedule on this wake-up, no catch-up burst
            self.rephased += 1
            self.next_t = t
        self.stage = "read_state"
        st = self.backend.read_state()
        self.stage = "state checks"
        self.mode_machine = _mode_machine(st.mode_machine)
        q29 = np.asarray(st.q, dtype=np.float64)[:N_MOTORS]
        dq29 = np.asarray(st.dq, dtype=np.float64)[:N_MOTORS]
        gyro, quat = np.asarray(st.imu_gyro_b, np.float64), np.asarray(st.imu_quat_wxyz, np.float64)
        height = getattr(self.backend, "root_height_m", None)
        s.check_state(st.tick, q29, dq29, gyro, quat, t, height() if callable(height) else None)
        self.last_q29 = np.where(np.isfinite(q29), q29, g1.MOTOR_DEFAULT_POS_RAD)
        if self.estop_requested:
            s.fault("e-stop", t)
        q, dq = q29[g1.POLICY_TO_MOTOR], dq29[g1.POLICY_TO_MOTOR]
        if s.mode != Mode.DAMPING:
            frame = g1.proprio_frame(q, dq, self.last_action, gyro, quat)[None]
        latent, age = self._latent(t)
        fresh = age is not None and age <= s.cfg.latent_stale_s
        if self.t_start is None and s.mode != Mode.DAMPING:
            self.t_start, self.ramp_from = t, self.last_q29.copy()
            self.prev_target = self.ramp_from.copy()
            self.history.fill([0], frame)
            if s.cfg.ramp_s <= 0:
                s.to(Mode.POLICY if fresh else Mode.HOLD, "no start-up ramp (ramp_s = 0)", t)
        elif s.mode != Mode.DAMPING:
            self.history.push(frame)
        target = g1.MOTOR_DEFAULT_POS_RAD
        raw_action = None
        self.stage = "mode"
        if s.mode == Mode.RAMP:
            a = min(1.0, (t - self.t_start) / s.cfg.ramp_s)
            target = self.ramp_from + a * (g1.MOTOR_DEFAULT_POS_RAD - self.ramp_from)
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
            self.stage = "observation"
            obs = g1.student_observation(latent.latent, self.history).astype(np.float32)
            self.last_obs = obs
            if s.check_finite("observation", obs, t):
                noise = (np.zeros((1, g1.N_ACT)) if self.cfg.noise == "zeros"
                         else self.rng.standard_normal((1, g1.N_ACT)))
                self.stage = "policy"
                action = np.asarray(self.policy.act(obs, noise), dtype=np.float64)
                if action.shape != (g1.N_ACT,):
                    raise DeployError(f"the policy returned an action of shape {action.shape}, expected ({g1.N_ACT},)")
                if s.check_finite("action", action, t):
                    raw_action = action
                    target = motor_targets(action)
                    if self.first_policy_s is None:
                        self.first_policy_s = t
                        for f in self.on_policy:
                            f()
        self.stage = "command"
        if s.mode == Mode.DAMPING:
            cmd = damping_lowcmd(self.last_q29, s.cfg.damping_kd, self.mode_machine)
        else:
            self.stage = "shaping"
            target, masks = self.shaping(target, self.prev_target, self.last_q29, np.nan_to_num(dq29), self.kp29,
                                         self.kd29, self.dt)
            self.clipped.add(masks)
            self.prev_target = target
            # the observation gets the raw action, as in training; outside POLICY, the action of the target
            self.last_action = raw_action if raw_action is not None else g1.action_from_target(target[g1.POLICY_TO_MOTOR])
            self.last_raw_action = raw_action
            cmd = build_lowcmd(target, self.kp29, self.kd29, self.mode_machine)
        self.stage = "send"
        self.backend.send(cmd)
        self.stage = "timing"
        compute = self.clock.now() - t + getattr(self.clock, "compute_s", 0.0)
        late_ms = self.late_s * 1e3
        s.timing(compute * 1e3, late_ms, self.dt * 1e3, t)
        prev = self.records[-1].t_s if self.records else None
        rec = CycleRecord(t, s.mode.value, compute * 1e3, None if prev is None else (t - prev) * 1e3, age, late_ms)
        self.records.append(rec)
        return rec

    def run(self, seconds: float) -> list[CycleRecord]:
        for _ in range(int(round(seconds * self.cfg.hz))):
            self.cycle()
        return self.records

    def exit_code(self) -> int:
        """EXIT_OK, or EXIT_DAMPED when a fault latched damping (an exception's code comes with RuntimeFault)."""
        if self.fatal is not None:
            return self.fatal.exit_code
        return EXIT_DAMPED if self.safety.mode == Mode.DAMPING else EXIT_OK


def realtime_priority(priority: int | None) -> str:
    """Ask the OS to run this process ahead of others: SCHED_FIFO at `priority` (Linux, root or
    CAP_SYS_NICE), else nice -10, else nothing; returns what it got (the loop runs either way)."""
    import os

    if not priority:
        return "default scheduling"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return f"SCHED_FIFO priority {priority}"
    except (AttributeError, PermissionError, OSError):
        pass
    try:
        os.nice(-10)
        return "nice -10 (SCHED_FIFO not permitted)"
    except (PermissionError, OSError):
        return "default scheduling (no permission to raise priority)"


def default_priority() -> None:
    """Back to SCHED_OTHER (after a timed section that raised it)."""
    import os

    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, PermissionError, OSError):
        pass


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Shutdown in the main thread (so the cycle in progress sends damping); restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        raise Shutdown(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_cycles(rt: Runtime, cycles: int | None, before_cycle: Callable[[int], None] | None = None,
               log: Callable[[str], None] = print) -> int:
    """Run `cycles` cycles (None: until stopped) with SIGTERM and Ctrl-C ending in damping; returns the
    exit status: EXIT_OK, EXIT_DAMPED (a latched fault; the loop kept sending damping to the end),
    EXIT_EXCEPTION / EXIT_SIGINT / EXIT_SIGTERM (damping sent, then stopped)."""
    i = 0
    with sigterm_raises():
        try:
            while cycles is None or i < cycles:
                try:
                    if before_cycle is not None:
                        before_cycle(i)
                except BaseException as e:  # noqa: BLE001 - outside the cycle, but still before any command
                    raise rt._fail_safe(e, rt.clock.now()) from e
                rt.cycle()
                i += 1
        except RuntimeFault as f:
            log(f"runtime: {f} -> damping sent, stopping (exit {f.exit_code})")
            return f.exit_code
    code = rt.exit_code()
    if code == EXIT_DAMPED:
        log(f"runtime: ended in damping: {rt.safety.fault_reason}")
    return code


def damping_slots_ok(cmd: LowCmd, damping_kd: float) -> bool:
    return bool(np.all(cmd.kp == 0) and np.allclose(cmd.kd[:N_MOTORS], damping_kd) and not cmd.unset_slots()
                and len(cmd.q) == N_SLOTS)
