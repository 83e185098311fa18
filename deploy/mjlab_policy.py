"""mjlab's policy ONNX in the deploy runtime: its metadata contract, checked and mapped into our order, and
its tracking policy run in the sim backend.

The contract is the one mjlab's exporter writes (`mjlab/rl/exporter_utils.py: get_base_metadata`): keys
`joint_names`, `default_joint_pos`, `action_scale`, `joint_stiffness`, `joint_damping`, values comma
separated with 3 decimals (`action_scale` may be one number). Our own exporter (train.export) writes the
same keys as JSON lists, for the 23 policy joints; `contract_from_metadata` reads both and is the one
check both kinds of ONNX go through (deploy.runtime.OnnxPolicy calls it on ours). A mismatch is refused
by name: a missing key, a joint the G1 does not have, a joint missing or twice, a value count that is not
the joint count, a default outside the joint's range, a gain outside the bounds `g1.gain_bounds` puts
on that joint's motor, an action scale that is not a positive number.

mjlab's tracking ONNX (`tasks/tracking/rl/runner.py`) takes `obs` (1, D) and `time_step` (1, 1) and
returns `actions` and the reference it bundles at that step (`joint_pos`, `joint_vel`, `body_pos_w`,
`body_quat_w`, ... in its `body_names` order). `MjlabTrackingPolicy` builds mjlab's actor observation
from the low state and that reference (`observation_names` from the metadata: the no-state-estimation
task's terms; `motion_anchor_pos_b` and `base_lin_vel` need the root's world position and velocity,
which LowState does not carry, and are refused). Targets: default + action_scale * action, mjlab's
joint order mapped to the motor order by name.

`python -m deploy.mjlab_policy --policy P.onnx --cycles N` runs it in the sim from the reference's
first frame and reports whether the G1 stayed up.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.lowcmd import LowState
from deploy.runtime import DeployError, FakeClock, build_lowcmd, damping_lowcmd
from deploy.safety import Mode, Safety, SafetyConfig
from robomirror import g1_contract as g1
from robomirror.rotations import axis_angle_to_matrix, quat_wxyz_to_matrix

MJLAB_KEYS = ("joint_names", "default_joint_pos", "action_scale", "joint_stiffness", "joint_damping")
TRACKING_INPUTS = ("obs", "time_step")
TRACKING_OUTPUTS = ("actions", "joint_pos", "joint_vel", "body_pos_w", "body_quat_w")
ANCHOR_BODY = "torso_link"  # the anchor whose orientation the runtime can compute (pelvis IMU + waist joints)
STATE_ESTIMATION_TERMS = {
    "motion_anchor_pos_b": "the root's world position",
    "base_lin_vel": "the root's linear velocity",
}
NO_STATE_ESTIMATION_TASK = "Mjlab-Tracking-Flat-Unitree-G1-No-State-Estimation"


@dataclass(frozen=True)
class PolicyContract:
    """A policy's joints and what it was trained with, in the file's own joint order, with the map to the
    G1's motor order (`motor_index[i]` = motor of joint i)."""

    joint_names: tuple[str, ...]
    motor_index: np.ndarray  # (n,) int
    default_joint_pos_rad: np.ndarray  # (n,)
    action_scale: np.ndarray  # (n,) rad per unit action
    kp_nm_rad: np.ndarray  # (n,)
    kd_nm_s_rad: np.ndarray  # (n,)

    @property
    def n(self) -> int:
        return len(self.joint_names)

    def motor(self, x: np.ndarray) -> np.ndarray:
        """(n,) values in the file's order -> (29,) motor order; joints the file leaves out (the wrists of a
        23-joint policy) take the contract's locked values."""
        out = g1.MOTOR_DEFAULT_POS_RAD.copy()
        out[self.motor_index] = x
        return out

    def from_motor(self, x29: np.ndarray) -> np.ndarray:
        return np.asarray(x29)[self.motor_index]

    def motor_gains(self) -> tuple[np.ndarray, np.ndarray]:
        kp, kd = np.zeros(len(g1.G1_29DOF_JOINTS)), np.zeros(len(g1.G1_29DOF_JOINTS))
        kp[g1.LOCKED_TO_MOTOR], kd[g1.LOCKED_TO_MOTOR] = g1.LOCKED_KP, g1.LOCKED_KD
        kp[self.motor_index], kd[self.motor_index] = self.kp_nm_rad, self.kd_nm_s_rad
        return kp, kd


def metadata_values(raw: str, key: str, source: str) -> list:
    """A metadata value as a list: our JSON (`[...]` or a number) or mjlab's comma-separated text."""
    text = raw.strip()
    if text.startswith("[") or text.startswith('"'):
        try:
            v = json.loads(text)
        except json.JSONDecodeError as e:
            raise DeployError(f"{source}: metadata {key!r} starts like JSON but is not ({text[:40]!r})") from e
        return v if isinstance(v, list) else [v]
    return [s.strip() for s in text.split(",")] if text else []


def _numbers(raw: str, key: str, source: str, n: int, names: tuple[str, ...], scalar_ok: bool = False) -> np.ndarray:
    vals = metadata_values(raw, key, source)
    try:
        a = np.asarray([float(v) for v in vals], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DeployError(f"{source}: metadata {key!r} holds something that is not a number ({raw[:60]!r})") from e
    if scalar_ok and a.size == 1:
        a = np.full(n, a[0])
    if a.size != n:
        raise DeployError(f"{source}: metadata {key!r} has {a.size} values for {n} joints (joint_names); expected "
                          f"one per joint{' (or one for all)' if scalar_ok else ''}")
    bad = np.flatnonzero(~np.isfinite(a))
    if len(bad):
        raise DeployError(f"{source}: metadata {key!r} of {names[bad[0]]} is {a[bad[0]]}: not a finite number")
    return a


def contract_from_metadata(raw: Mapping[str, str], source: str) -> PolicyContract:
    """mjlab's metadata keys, from an mjlab export or ours, checked against the G1 contract by name."""
    missing = [k for k in MJLAB_KEYS if k not in raw]
    if missing:
        raise DeployError(f"{source}: metadata keys {missing} missing; a policy for the G1 carries {list(MJLAB_KEYS)} "
                          "(mjlab's exporter writes them, and so does train.export): re-export it")
    names = tuple(str(v) for v in metadata_values(raw["joint_names"], "joint_names", source))
    unknown = [j for j in names if j not in g1.G1_29DOF_JOINTS]
    if unknown:
        raise DeployError(f"{source}: joint_names has {unknown}, not joints of the 29-DoF G1 "
                          "(robomirror.g1_contract.G1_29DOF_JOINTS): a policy for another robot or model?")
    twice = sorted({j for j in names if names.count(j) > 1})
    if twice:
        raise DeployError(f"{source}: joint_names lists {twice} more than once")
    if set(names) != set(g1.G1_29DOF_JOINTS) and set(names) != set(g1.POLICY_JOINTS):
        absent = [j for j in g1.G1_29DOF_JOINTS if j not in names]
        raise DeployError(f"{source}: joint_names has {len(names)} joints, missing {absent}; expected the G1's 29 "
                          f"(mjlab) or the {g1.N_ACT} policy joints with the wrists locked (ours)")
    n = len(names)
    default = _numbers(raw["default_joint_pos"], "default_joint_pos", source, n, names)
    scale = _numbers(raw["action_scale"], "action_scale", source, n, names, scalar_ok=True)
    kp = _numbers(raw["joint_stiffness"], "joint_stiffness", source, n, names)
    kd = _numbers(raw["joint_damping"], "joint_damping", source, n, names)
    motor = np.array([g1.G1_29DOF_JOINTS.index(j) for j in names])
    lo, hi = g1.MOTOR_RANGE_RAD[motor, 0], g1.MOTOR_RANGE_RAD[motor, 1]
    out = np.flatnonzero((default < lo) | (default > hi))
    if len(out):
        j = out[0]
        raise DeployError(f"{source}: default_joint_pos of {names[j]} is {default[j]:.3f} rad, outside its range "
                          f"[{lo[j]:.3f}, {hi[j]:.3f}]: refused")
    nonpos = np.flatnonzero(scale <= 0)
    if len(nonpos):
        j = nonpos[0]
        raise DeployError(f"{source}: action_scale of {names[j]} is {scale[j]}; expected a positive scale "
                          "(rad per unit action)")
    kp_max, kd_max = g1.gain_bounds(np.array([g1.armature_kg_m2(j) for j in names]))
    for key, x, hi_, strict in (("joint_stiffness", kp, kp_max, True), ("joint_damping", kd, kd_max, False)):
        bad = np.flatnonzero(~((x > 0) if strict else (x >= 0)) | (x > hi_))
        if len(bad):
            j = bad[0]
            raise DeployError(
                f"{source}: {key} of {names[j]} is {x[j]:.3f}, outside the robot's range {'(' if strict else '['}0, "
                f"{hi_[j]:.1f}] (natural frequency <= {g1.MAX_NATURAL_FREQ_HZ} Hz, damping ratio <= "
                f"{g1.MAX_DAMPING_RATIO} for this motor's armature): refused")
    return PolicyContract(names, motor, default, scale, kp, kd)


def check_agrees_with_ours(c: PolicyContract, meta: Mapping, source: str) -> None:
    """Our ONNX carries both key sets: mjlab's must say what ours say (decoded JSON `meta`)."""
    if c.joint_names != tuple(g1.POLICY_JOINTS):
        raise DeployError(f"{source}: joint_names {list(c.joint_names[:2])}... is not the policy order "
                          f"{list(g1.POLICY_JOINTS[:2])}...: re-export it")
    for key, got, ours in (("default_joint_pos", c.default_joint_pos_rad, "default_joint_pos_rad"),
                           ("joint_stiffness", c.kp_nm_rad, "kp"), ("joint_damping", c.kd_nm_s_rad, "kd")):
        if not np.allclose(got, np.asarray(meta[ours], dtype=np.float64), atol=1e-3):
            raise DeployError(f"{source}: metadata {key!r} differs from {ours!r}: re-export it")


# ------------------------------------------------------------------------------------------ observation
def _term_sizes(n: int) -> dict[str, int]:
    return {"command": 2 * n, "motion_anchor_ori_b": 6, "base_ang_vel": 3, "joint_pos": n, "joint_vel": n,
            "actions": n}


def torso_rot_w(pelvis_quat_wxyz: np.ndarray, waist_yaw_roll_pitch_rad: np.ndarray) -> np.ndarray:
    """torso_link's world rotation (3, 3): the pelvis IMU's, then the waist's yaw (z), roll (x), pitch (y)
    joints (the Menagerie G1's waist bodies carry no rotation of their own)."""
    y, r, p = waist_yaw_roll_pitch_rad
    return (quat_wxyz_to_matrix(np.asarray(pelvis_quat_wxyz, np.float64))
            @ axis_angle_to_matrix(np.array([0.0, 0.0, y])) @ axis_angle_to_matrix(np.array([r, 0.0, 0.0]))
            @ axis_angle_to_matrix(np.array([0.0, p, 0.0])))


WAIST = [g1.G1_29DOF_JOINTS.index(j) for j in ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint")]


class MjlabTrackingPolicy:
    """mjlab's tracking ONNX, checked at load: the metadata contract, the observation terms it names
    (each one this runtime can build), the graph's inputs and outputs, and one dry run."""

    def __init__(self, path, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        src = self.path.name
        if not self.path.is_file():
            raise DeployError(f"policy {self.path}: no such file (expected mjlab's tracking ONNX export)")
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for every way a file is bad
            raise DeployError(f"policy {self.path} is not a loadable ONNX model: {str(e).splitlines()[0][:200]}") from e
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.contract = contract_from_metadata(self.meta, src)
        n = self.contract.n
        for key in ("observation_names", "anchor_body_name", "body_names"):
            if key not in self.meta:
                raise DeployError(f"{src}: metadata key {key!r} missing; mjlab's tracking runner writes it "
                                  "(MotionTrackingOnPolicyRunner.save)")
        self.terms = tuple(metadata_values(self.meta["observation_names"], "observation_names", src))
        sizes = _term_sizes(n)
        for t in self.terms:
            if t in STATE_ESTIMATION_TERMS:
                raise DeployError(f"{src}: observation {t!r} needs {STATE_ESTIMATION_TERMS[t]}, which the low state "
                                  f"does not carry: train {NO_STATE_ESTIMATION_TASK} for this runtime")
            if t not in sizes:
                raise DeployError(f"{src}: observation term {t!r} is not one this runtime builds ({sorted(sizes)})")
        self._check_terms_plain(src)
        self.anchor = self.meta["anchor_body_name"].strip()
        if self.anchor != ANCHOR_BODY:
            raise DeployError(f"{src}: anchor body {self.anchor!r}; this runtime computes {ANCHOR_BODY!r} only")
        self.body_names = tuple(str(b) for b in metadata_values(self.meta["body_names"], "body_names", src))
        for b in (ANCHOR_BODY, "pelvis"):
            if b not in self.body_names:
                raise DeployError(f"{src}: body_names {list(self.body_names)} lacks {b!r}")
        self.anchor_i, self.pelvis_i = self.body_names.index(ANCHOR_BODY), self.body_names.index("pelvis")
        ins = {i.name: i.shape for i in self.session.get_inputs()}
        outs = [o.name for o in self.session.get_outputs()]
        if set(ins) != set(TRACKING_INPUTS) or any(o not in outs for o in TRACKING_OUTPUTS):
            raise DeployError(f"{src}: graph inputs {sorted(ins)}, outputs {outs}; mjlab's tracking export has inputs "
                              f"{list(TRACKING_INPUTS)} and outputs {list(TRACKING_OUTPUTS)}, ...")
        self.obs_dim = sum(sizes[t] for t in self.terms)
        width = ins["obs"][-1] if ins["obs"] else None
        if isinstance(width, int) and width != self.obs_dim:
            raise DeployError(f"{src}: the graph takes obs of size {width}, its observation_names {list(self.terms)} "
                              f"make {self.obs_dim} for {n} joints")
        self.outputs = outs
        ref = self.reference(0)
        a = self.act(np.zeros(self.obs_dim, np.float32), 0)
        if a.shape != (n,) or not np.all(np.isfinite(a)) or ref["joint_pos"].shape != (n,):
            raise DeployError(f"{src}: dry run gave actions of shape {a.shape}, reference joints "
                              f"{ref['joint_pos'].shape}; expected {n} finite values each")

    def _check_terms_plain(self, src: str) -> None:
        """The tracking task's terms have scale 1, no clip and no history; a policy trained otherwise needs
        what this runtime does not do."""
        for key, plain in (("observation_terms_scale", lambda v: float(v) == 1.0),
                           ("observation_terms_history_length", lambda v: int(float(v)) == 0),
                           ("observation_terms_clip", lambda v: all(abs(float(x)) == np.inf for x in str(v).split(";")))):
            if key not in self.meta:
                continue
            vals = metadata_values(self.meta[key], key, src)
            if len(vals) != len(self.terms):
                raise DeployError(f"{src}: {key} has {len(vals)} entries for {len(self.terms)} observation terms")
            for t, v in zip(self.terms, vals, strict=True):
                try:
                    ok = plain(v)
                except ValueError:
                    ok = False
                if not ok:
                    raise DeployError(f"{src}: observation term {t!r} has {key} {v!r}; this runtime builds terms "
                                      "unscaled, unclipped and without history")

    def reference(self, step: int) -> dict[str, np.ndarray]:
        """The reference the ONNX bundles at `step` (clamped to its last frame), in its own orders."""
        out = self.session.run(None, {"obs": np.zeros((1, self.obs_dim), np.float32),
                                      "time_step": np.array([[float(step)]], np.float32)})
        return {k: np.asarray(v[0], np.float64) for k, v in zip(self.outputs, out, strict=True) if k != "actions"}

    def act(self, obs: np.ndarray, step: int) -> np.ndarray:
        return np.asarray(self.session.run(["actions"], {"obs": obs.reshape(1, -1).astype(np.float32),
                                                         "time_step": np.array([[float(step)]], np.float32)})[0][0],
                          np.float64)

    def observation(self, st: LowState, last_action: np.ndarray, ref: Mapping[str, np.ndarray]) -> np.ndarray:
        """mjlab's actor observation from the low state and the reference, in `observation_names` order."""
        c = self.contract
        q29, dq29 = np.asarray(st.q, np.float64)[:29], np.asarray(st.dq, np.float64)[:29]
        rot_robot = torso_rot_w(st.imu_quat_wxyz, q29[WAIST])
        rot_ref = quat_wxyz_to_matrix(ref["body_quat_w"][self.anchor_i])
        rel = rot_robot.T @ rot_ref
        parts = {"command": np.concatenate([ref["joint_pos"], ref["joint_vel"]]),
                 "motion_anchor_ori_b": rel[:, :2].reshape(-1),
                 "base_ang_vel": np.asarray(st.imu_gyro_b, np.float64),
                 "joint_pos": c.from_motor(q29) - c.default_joint_pos_rad,
                 "joint_vel": c.from_motor(dq29),
                 "actions": last_action}
        return np.concatenate([parts[t] for t in self.terms]).astype(np.float32)

    def target_motor(self, action: np.ndarray) -> np.ndarray:
        c = self.contract
        return c.motor(c.default_joint_pos_rad + c.action_scale * action)


# ------------------------------------------------------------------------------------------ sim run
def start_qpos(policy: MjlabTrackingPolicy, backend, ref: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The sim's qpos/qvel at the reference's frame (pelvis pose and velocity, joints by name)."""
    m, c = backend.m, policy.contract
    qpos, qvel = np.zeros(m.nq), np.zeros(m.nv)
    qpos[:3], qpos[3:7] = ref["body_pos_w"][policy.pelvis_i], ref["body_quat_w"][policy.pelvis_i]
    if "body_lin_vel_w" in ref and "body_ang_vel_w" in ref:
        rot = quat_wxyz_to_matrix(qpos[3:7])
        qvel[:3], qvel[3:6] = ref["body_lin_vel_w"][policy.pelvis_i], rot.T @ ref["body_ang_vel_w"][policy.pelvis_i]
    motors = c.motor_index
    qpos[backend.qadr[motors]], qvel[backend.vadr[motors]] = ref["joint_pos"], ref["joint_vel"]
    return qpos, qvel


def run_in_sim(policy: MjlabTrackingPolicy, cycles: int, seed: int = 0, hz: float = g1.POLICY_HZ,
               safety: SafetyConfig | None = None, video: Path | None = None) -> dict:
    """`cycles` 50 Hz cycles in the sim backend from the reference's first frame (deterministic clock):
    observation -> ONNX -> PD targets in motor order, the deploy safety's state checks on every cycle
    (a fall latches damping). Returns what happened, every figure measured."""
    from deploy.backends.sim import SimBackend

    clock = FakeClock()
    backend = SimBackend(clock, seed=seed, video=video)
    ref = policy.reference(0)
    backend.set_state(*start_qpos(policy, backend, ref))
    s = Safety(safety or SafetyConfig(ramp_s=0.0))
    s.to(Mode.POLICY, "mjlab policy from the reference's first frame", clock.now())
    kp29, kd29 = policy.contract.motor_gains()
    last_action = np.zeros(policy.contract.n)
    dt, t_next = 1.0 / hz, clock.now()
    joint_err, heights, policy_cycles = [], [], 0
    for i in range(cycles):
        st = backend.read_state()
        q29 = np.asarray(st.q, np.float64)[:29]
        s.check_state(st.tick, q29, np.asarray(st.dq, np.float64)[:29], np.asarray(st.imu_gyro_b, np.float64),
                      np.asarray(st.imu_quat_wxyz, np.float64), clock.now(), backend.root_height_m())
        heights.append(backend.root_height_m())
        if s.mode == Mode.DAMPING:
            backend.send(damping_lowcmd(q29, s.cfg.damping_kd, 0))
        else:
            ref = policy.reference(i)
            joint_err.append(float(np.mean(np.abs(policy.contract.from_motor(q29) - ref["joint_pos"]))))
            obs = policy.observation(st, last_action, ref)
            action = policy.act(obs, i)
            if not s.check_finite("action", action, clock.now()):
                backend.send(damping_lowcmd(q29, s.cfg.damping_kd, 0))
            else:
                last_action = action
                backend.send(build_lowcmd(policy.target_motor(action), kp29, kd29, 0))
                policy_cycles += 1
        t_next += dt
        clock.sleep_until(t_next)
    fell = s.mode == Mode.DAMPING
    fault_t = next((tr.t_s for tr in s.transitions if tr.to_mode == Mode.DAMPING.value), None) if fell else None
    video_path = backend.close()
    return {"policy": str(policy.path), "cycles": cycles, "seconds": cycles / hz, "policy_cycles": policy_cycles,
            "stayed_up": not fell, "fault": s.fault_reason, "fault_at_s": fault_t,
            "joint_err_mean_rad": float(np.mean(joint_err)) if joint_err else None,
            "pelvis_height_min_m": float(np.min(heights)), "pelvis_height_end_m": float(heights[-1]),
            "joints": policy.contract.n, "observation": list(policy.terms), "obs_dim": policy.obs_dim,
            "video": str(video_path) if video_path else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.mjlab_policy",
                                 description="load mjlab's tracking ONNX through the G1 contract and run it in the sim")
    ap.add_argument("--policy", required=True, help="mjlab's tracking ONNX (its runner's <run>.onnx)")
    ap.add_argument("--cycles", type=int, default=150, help="50 Hz cycles to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--video", help="an mp4 of the run")
    ap.add_argument("--json", help="write the outcome here")
    args = ap.parse_args(argv)
    try:
        policy = MjlabTrackingPolicy(args.policy)
    except DeployError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    c = policy.contract
    print(f"loaded {policy.path.name}: {c.n} joints mapped into the motor order by name, observation "
          f"{list(policy.terms)} ({policy.obs_dim}), kp {c.kp_nm_rad.min():.1f}-{c.kp_nm_rad.max():.1f} N m/rad, "
          f"action scale {c.action_scale.min():.3f}-{c.action_scale.max():.3f} rad")
    r = run_in_sim(policy, args.cycles, args.seed, video=Path(args.video) if args.video else None)
    if args.json:
        from robomirror.atomic import publish_bytes

        publish_bytes(Path(args.json), json.dumps(r, indent=1).encode())
    up = "stayed up" if r["stayed_up"] else f"did not stay up: {r['fault']} at {r['fault_at_s']:.2f} s"
    err = "n/a" if r["joint_err_mean_rad"] is None else f"{r['joint_err_mean_rad']:.3f}"
    print(f"sim: {r['cycles']} cycles ({r['seconds']:.1f} s), {r['policy_cycles']} under the policy; the G1 {up}; "
          f"mean |q - q_ref| {err} rad while tracking; pelvis min {r['pelvis_height_min_m']:.2f} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
