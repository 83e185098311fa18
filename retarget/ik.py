"""Per-frame pose fit with pink: frame tasks (pelvis, feet), position tasks (knees, toes, elbows,
wrists, head), a posture regulariser, configuration and velocity limits; warm-started from the
previous frame, deterministic (fixed iteration counts, no randomness).
"""

from __future__ import annotations

from ctypes import c_int
from dataclasses import dataclass

import daqp
import numpy as np
import pink
import pinocchio as pin
from pink.limits import ConfigurationLimit, VelocityLimit
from pink.tasks import FrameTask, PostureTask, Task
from pink.utils import get_root_joint_dim

from retarget.correspondence import TASKS, TaskSpec
from retarget.robot import G1
from retarget.self_collision import SelfCollisionLimit

SOLVER = "daqp"


@dataclass(frozen=True)
class IKConfig:
    iterations_per_frame: int = 2  # solver steps per frame; velocity limits spread over them
    first_frame_iterations: int = 50  # at most: the first frame starts from the standing pose ...
    first_frame_tol_rad: float = 1e-4  # ... and stops once no joint moves more than this in a step
    posture_cost: float = 0.02  # regulariser towards the previous frame's joints [1/rad]
    contact_lock: bool = True  # a foot in contact at t-1 and t keeps its t-1 position (no skate)
    lock_cost: float = 10.0  # position cost of a locked foot [1/m]: it must win over the other tasks
    foot_frame: str = "shin"  # "shin": level side axis signed by the shin; "heading": yaw of ankle->toe (flips)
    self_collision: bool = False  # arm capsules kept off the legs, pelvis, torso, other arm (~0.4x IK speed: bench)
    tasks: tuple[TaskSpec, ...] = TASKS


class StackedFrameTasks(Task):
    """Many pink FrameTasks as one: the same Jacobians, errors and weights as pink computes for each,
    stacked so the QP objective is one product (H = (WJ)^T WJ, c = g e^T W^2 J) instead of a dense
    (nv x nv) product and sum per task. Same mathematics as passing the tasks one by one
    (lm_damping 0, one gain), about twice the IK frames/s (`make bench`)."""

    def __init__(self, tasks: list[FrameTask], model: pin.Model) -> None:
        gains = {t.gain for t in tasks}
        if len(gains) != 1 or any(t.lm_damping for t in tasks):
            raise ValueError("stacked frame tasks need one gain and no Levenberg-Marquardt damping")
        super().__init__(cost=1.0, gain=gains.pop(), lm_damping=0.0)
        self.tasks = tasks
        self.frame_ids = [model.getFrameId(t.frame) for t in tasks]

    def _rows(self, configuration) -> tuple[np.ndarray, np.ndarray]:
        """(e, J) stacked: per task pink's e = log(T_bt) and J = -Jlog6(T_tb) J_b (body frame)."""
        errors, jacobians = [], []
        model, data = configuration.model, configuration.data
        for t, fid in zip(self.tasks, self.frame_ids, strict=True):
            frame_to_world = data.oMf[fid]
            errors.append(pin.log6(frame_to_world.actInv(t.transform_target_to_world)).vector)
            jac = pin.getFrameJacobian(model, data, fid, pin.ReferenceFrame.LOCAL)
            jacobians.append(-pin.Jlog6(t.transform_target_to_world.actInv(frame_to_world)) @ jac)
        return np.concatenate(errors), np.concatenate(jacobians)

    def compute_error(self, configuration) -> np.ndarray:
        return self._rows(configuration)[0]

    def compute_jacobian(self, configuration) -> np.ndarray:
        return self._rows(configuration)[1]

    def compute_qp_objective(self, configuration) -> tuple[np.ndarray, np.ndarray]:
        w = np.concatenate([t.cost for t in self.tasks])
        keep = w > 0  # position-only tasks: their orientation rows weigh nothing
        e, jac = self._rows(configuration)
        wj = w[keep, None] * jac[keep]
        we = w[keep] * e[keep]
        return wj.T @ wj, self.gain * (we @ wj)

    def __repr__(self) -> str:
        return f"StackedFrameTasks({len(self.tasks)} tasks)"


class ConstantPostureTask(PostureTask):
    """pink's PostureTask with its constant parts computed once: the Jacobian is the identity on the
    joints, so H = cost^2 diag(0 (root), 1 (joints)) never changes and c = -(W (-gain e))^T W J is the
    weighted error placed on the joint rows. Same numbers as PostureTask (tested); no Levenberg-Marquardt
    damping (the only way we use it)."""

    def __init__(self, cost: float, model: pin.Model) -> None:
        super().__init__(cost=cost)
        self._root_nv = get_root_joint_dim(model)[1]
        diag = np.zeros(model.nv)
        diag[self._root_nv:] = cost * cost
        self._hessian = np.diag(diag)

    def compute_qp_objective(self, configuration) -> tuple[np.ndarray, np.ndarray]:
        weighted_error = self.cost * (-self.gain * self.compute_error(configuration))
        c = np.zeros(configuration.model.nv)
        c[self._root_nv:] = -(weighted_error * self.cost)
        return self._hessian.copy(), c


class _ConstantLimits:
    """The (G, h) stack of pink's ConfigurationLimit (+ VelocityLimit) with G built once: G is a fixed
    +-projection, only h moves with q (and dt). Same numbers as pink's own stack (tested)."""

    def __init__(self, limits: list, varying: list | None = None) -> None:
        self.limits = limits
        self.varying = varying or []  # limits whose rows change with q (self-collision): stacked per call
        self.g = np.vstack([np.vstack([lim.projection_matrix, -lim.projection_matrix]) for lim in limits])

    def h(self, conf: pink.Configuration, dt: float) -> np.ndarray:
        parts = []
        for lim in self.limits:
            if isinstance(lim, ConfigurationLimit):
                up = pin.difference(lim.model, conf.q, lim.model.upperPositionLimit)[lim.indices]
                low = pin.difference(lim.model, conf.q, lim.model.lowerPositionLimit)[lim.indices]
                parts += [lim.config_limit_gain * up, -(lim.config_limit_gain * low)]
            else:
                v_max = lim.velocity_limit[lim.indices]
                parts += [dt * v_max, dt * v_max]
        return np.concatenate(parts)


def _daqp(hessian: np.ndarray, linear: np.ndarray, g: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, int]:
    """min 1/2 x^T H x + c^T x subject to G x <= h, with daqp: (x, exit flag; > 0 solved)."""
    x, _, exitflag, _ = daqp.solve(hessian, linear, g, h, np.full(len(h), -1e30), np.zeros(len(h), dtype=c_int))
    return x, exitflag


def ik_velocity(conf: pink.Configuration, tasks: list[Task], limits: _ConstantLimits, dt: float) -> np.ndarray:
    """pink.solve_ik's QP (Tikhonov damping 1e-12, the same objective sum and inequality stack), solved
    with daqp directly, without pink's and qpsolvers' per-call problem wrapping and checks. The test
    suite checks the trajectories match pink.solve_ik's (pink_reference_velocity)."""
    nv = conf.model.nv
    hessian, linear = 1e-12 * np.eye(nv), np.zeros(nv)
    for task in tasks:
        h_task, c_task = task.compute_qp_objective(conf)
        hessian += h_task
        linear += c_task
    g, h = limits.g, limits.h(conf, dt)
    extra = [m for m in (limit.compute_qp_inequalities(conf, dt) for limit in limits.varying) if m is not None]
    exitflag = 0
    if extra:  # the varying rows (self-collision) first; where they conflict with the joint limits, without them
        dq, exitflag = _daqp(hessian, linear, np.vstack([g, *(m[0] for m in extra)]),
                             np.concatenate([h, *(m[1] for m in extra)]))
    if exitflag <= 0:
        dq, exitflag = _daqp(hessian, linear, g, h)
    if exitflag <= 0:
        raise RuntimeError(f"the IK QP has no solution (solver {SOLVER}, exit flag {exitflag}); limits may be inconsistent")
    return dq / dt


def pink_reference_velocity(conf: pink.Configuration, tasks: list[Task], limits: _ConstantLimits, dt: float):
    """What ik_velocity computes, the way pink computes it: pink's own tasks one by one (FrameTasks,
    a plain PostureTask), its own limit stack, qpsolvers' daqp. The test of ik_velocity and the bench's
    speed baseline (monkeypatched in place of ik_velocity)."""
    stacked, posture = tasks
    plain = PostureTask(cost=posture.cost)
    plain.set_target(posture.target_q)
    return pink.solve_ik(conf, [*stacked.tasks, plain], dt, solver=SOLVER, limits=[*limits.limits, *limits.varying],
                         safety_break=False)


def _frames(x_axis: np.ndarray, y_hint: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) whose x axis is x_axis and whose y axis is closest to y_hint."""
    x = x_axis / np.linalg.norm(x_axis, axis=-1, keepdims=True)
    z = np.cross(x, y_hint)
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    return np.stack([x, np.cross(z, x), z], axis=-1)


def pelvis_rotations(kp: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 3, 3) pelvis frames of the human: y from right to left hip, z up the spine, x forward."""
    y = kp["left_hip"] - kp["right_hip"]
    up = 0.5 * (kp["left_shoulder"] + kp["right_shoulder"]) - kp["pelvis"]
    return _frames(np.cross(y, up), y)


def foot_pitch(kp: dict[str, np.ndarray], side: str) -> np.ndarray:
    """(T,) pitch [rad] of the ankle -> toe vector, positive toe-down."""
    d = kp[f"{side}_toe"] - kp[f"{side}_ankle"]
    return np.arctan2(-d[:, 2], np.linalg.norm(d[:, :2], axis=-1))


def foot_rotations(kp: dict[str, np.ndarray], side: str, flat_pitch: float) -> np.ndarray:
    """(T, 3, 3) foot frames in the world: x from ankle to toe, y level (no roll) and on the side the
    shin says, pitched back by the skeleton's own flat-foot pitch (skeletons disagree on where the toe
    joint sits).

    A heading taken from the ankle -> toe vector alone (yaw = atan2, pitch capped at +-90 degrees) flips
    180 degrees when the toe passes behind or above the ankle (toe-off, kneeling, crawling,
    cartwheels) and drags hip yaw and knee with it. Here the level side axis z_up x foot has two
    signs, and the one that agrees with the shin (knee - ankle) x foot is taken; a vertical foot keeps
    the side axis of the frame before it, so the frame is continuous through every pose.
    """
    x = kp[f"{side}_toe"] - kp[f"{side}_ankle"]
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    level = np.cross(np.array([0.0, 0.0, 1.0]), x)
    level_norm = np.linalg.norm(level, axis=-1)
    shin = kp[f"{side}_knee"] - kp[f"{side}_ankle"]
    by_shin = np.cross(shin, x)
    shin_norm = np.linalg.norm(by_shin, axis=-1) / np.maximum(np.linalg.norm(shin, axis=-1), 1e-9)
    y = np.empty_like(x)
    prev = np.array([0.0, 1.0, 0.0])
    for t in range(len(x)):
        ref = by_shin[t] if shin_norm[t] > 0.05 else prev
        if level_norm[t] > 0.05:
            yt = level[t] / level_norm[t]
            if np.dot(yt, ref) < 0:
                yt = -yt
        else:  # foot nearly vertical: no level axis; keep the reference, made orthogonal to the foot
            yt = ref - np.dot(ref, x[t]) * x[t]
            yt = yt / max(float(np.linalg.norm(yt)), 1e-12)
        y[t] = prev = yt
    frames = np.stack([x, y, np.cross(x, y)], axis=-1)
    c, s = np.cos(-flat_pitch), np.sin(-flat_pitch)
    back = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # local pitch by -flat (toe up)
    return frames @ back


def heading_foot_rotations(kp: dict[str, np.ndarray], side: str, flat_pitch: float) -> np.ndarray:
    """The earlier foot target, kept as the bench's control: yaw from the ankle -> toe vector, pitch
    capped at +-90 degrees. It flips 180 degrees when the toe passes behind the ankle."""
    d = kp[f"{side}_toe"] - kp[f"{side}_ankle"]
    yaw = np.arctan2(d[:, 1], d[:, 0])
    pitch = np.arctan2(-d[:, 2], np.linalg.norm(d[:, :2], axis=-1)) - flat_pitch
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    z, o = np.zeros_like(yaw), np.ones_like(yaw)
    rz = np.stack([np.stack([cy, -sy, z], -1), np.stack([sy, cy, z], -1), np.stack([z, z, o], -1)], -2)
    ry = np.stack([np.stack([cp, z, sp], -1), np.stack([z, o, z], -1), np.stack([-sp, z, cp], -1)], -2)
    return rz @ ry


def solve_clip(robot: G1, kp: dict[str, np.ndarray], contact: np.ndarray, fps: float,
               cfg: IKConfig = IKConfig()) -> np.ndarray:
    """Joint trajectories for scaled human keypoints.

    kp: robot keypoint name -> (T, 3) target position [m] (scaled human, z-up).
    contact: (T, 2) bool foot contact (left, right).
    Returns pinocchio configurations (T, nq).
    """
    model = robot.pin_model
    data = model.createData()
    n = len(kp["pelvis"])
    pelvis = pelvis_rotations(kp)
    r0 = pelvis[0]
    quat0 = pin.Quaternion(r0).coeffs()  # xyzw
    q = np.concatenate([kp["pelvis"][0], quat0, np.zeros(model.nq - 7)])
    conf = pink.Configuration(model, data, q)
    specs = {s.keypoint: s for s in cfg.tasks if s.keypoint in kp}
    tasks = {k: FrameTask(f"kp_{k}", s.position_cost, s.orientation_cost) for k, s in specs.items()}
    stacked = StackedFrameTasks(list(tasks.values()), model)
    posture = ConstantPostureTask(cfg.posture_cost, model)
    config_limit, velocity_limit = ConfigurationLimit(model), VelocityLimit(model)
    varying = [SelfCollisionLimit(model, robot.mj)] if cfg.self_collision else []
    # the first frame converges freely (the barrier's rows slow its Gauss-Newton steps to a crawl); from
    # then on a pair inside the margin may not come closer, and the tasks pull it out
    first_limits = _ConstantLimits([config_limit])
    limits = _ConstantLimits([config_limit, velocity_limit], varying)
    out = np.empty((n, model.nq))
    dt = 1.0 / fps
    prev_foot: dict[str, np.ndarray] = {}
    flat: dict[str, float] = {}
    for k, side in enumerate(("left", "right")):
        pitch = foot_pitch(kp, side)
        flat[side] = float(np.median(pitch[contact[:, k]] if contact[:, k].any() else pitch))
    frames_of = foot_rotations if cfg.foot_frame == "shin" else heading_foot_rotations
    feet = {f"{side}_ankle": frames_of(kp, side, flat[side]) for side in ("left", "right")}
    eye = np.eye(3)
    for t in range(n):
        for name, task in tasks.items():
            if name == "pelvis":
                rot = pelvis[t]
            elif name in ("left_ankle", "right_ankle"):
                rot = feet[name][t]
            else:
                rot = eye
            pos = kp[name][t].copy()
            side = name.split("_")[0]
            if cfg.contact_lock and name.endswith("_ankle"):
                k = 0 if side == "left" else 1
                locked = t > 0 and contact[t, k] and contact[t - 1, k]
                if locked:
                    pos[:2] = prev_foot[side][:2]
                task.set_position_cost(cfg.lock_cost if locked else specs[name].position_cost)
            task.set_target(pin.SE3(rot, pos))
        posture.set_target(conf.q)
        first = t == 0
        iters = cfg.first_frame_iterations if first else cfg.iterations_per_frame
        step = dt / iters
        scale, last = 1.0, np.inf
        for _ in range(iters):
            v = ik_velocity(conf, [stacked, posture], first_limits if first else limits, 0.05 if first else step)
            if first:
                size = np.abs(v).max() * 0.05
                if size >= last:  # not shrinking (full Gauss-Newton steps can cycle): damp the steps
                    scale *= 0.5
                if size * scale < cfg.first_frame_tol_rad:
                    break  # converged, or stalled against a constraint (deterministic either way)
                last = size
                conf.integrate_inplace(v, 0.05 * scale)
            else:
                conf.integrate_inplace(v, step)
        out[t] = conf.q
        for side in ("left", "right"):
            prev_foot[side] = conf.get_transform_frame_to_world(f"kp_{side}_ankle").translation.copy()
    return out

