"""Procedural human motion of labelled kinds as SMPL-X body parameters (SMPL canonical y-up frame).

Each kind is a pose function of time (local joint rotations) plus root velocities (forward,
lateral [m/s] and yaw rate [rad/s]); sequences chain kinds with cross-fades, integrate the root
and put the lowest foot joint on the ground every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.body_model import BuiltinSkeleton
from ingest.skeletons import SMPL_BODY_22
from robomirror.rotations import axis_angle_to_matrix, matrix_to_axis_angle

KINDS = ("stand", "walk_forward", "walk_backward", "turn_in_place", "side_step", "squat", "wave", "reach", "jog")
J = {n: i for i, n in enumerate(SMPL_BODY_22)}
FOOT_CLEARANCE_M = 0.04  # ankle/toe joint height above the floor at contact
_ARM_DOWN = 1.25  # shoulder roll that lowers the T-pose arms to the sides [rad]


@dataclass(frozen=True)
class Segment:
    kind: str
    seconds: float
    speed: float  # 0.5 slow .. 1.5 fast: scales cadence and velocity


def _rot(axis: str, angle: np.ndarray) -> np.ndarray:
    v = np.zeros(np.shape(angle) + (3,))
    v[..., "xyz".index(axis)] = angle
    return axis_angle_to_matrix(v)


def _pose(kind: str, t: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations (T, 22, 3, 3) and root velocities (T, 3) = (forward, left, yaw rate)."""
    n = len(t)
    r = np.broadcast_to(np.eye(3), (n, 22, 3, 3)).copy()
    vel = np.zeros((n, 3))
    z = np.zeros(n)

    def setj(name: str, m: np.ndarray) -> None:
        r[:, J[name]] = m

    arm_l, arm_r = _rot("z", z - _ARM_DOWN), _rot("z", z + _ARM_DOWN)
    setj("left_shoulder", arm_l)
    setj("right_shoulder", arm_r)
    breathe = 0.03 * np.sin(2 * np.pi * 0.25 * t)
    setj("spine3", _rot("x", breathe))

    if kind in ("walk_forward", "walk_backward", "jog", "turn_in_place", "side_step"):
        jog = kind == "jog"
        cadence = (1.4 if jog else 0.9) * speed  # strides per second
        ph = 2 * np.pi * cadence * t
        amp = (0.55 if jog else 0.4) * min(speed, 1.3)
        if kind in ("turn_in_place", "side_step"):
            amp *= 0.35
        sgn = -1.0 if kind == "walk_backward" else 1.0
        hip_l, hip_r = -amp * np.sin(ph) * sgn, amp * np.sin(ph) * sgn
        # a leg bends its knee while it swings (cos > 0 for the left), forwards or backwards alike
        lift = (1.1 if jog else 0.7) * min(speed, 1.3)
        knee_l, knee_r = lift * np.clip(np.cos(ph), 0, None), lift * np.clip(-np.cos(ph), 0, None)
        if kind == "side_step":
            hip_l = hip_r = z
            knee_l, knee_r = 0.6 * knee_l, 0.6 * knee_r
            # the left leg swings out while lifted and is pulled back under the body in stance
            setj("left_hip", _rot("z", 0.3 * (0.5 + 0.5 * np.sin(ph))))
            setj("right_hip", _rot("z", z))
        else:
            setj("left_hip", _rot("x", hip_l))
            setj("right_hip", _rot("x", hip_r))
        setj("left_knee", _rot("x", knee_l))
        setj("right_knee", _rot("x", knee_r))
        # keep the sole roughly level: the ankle undoes most of the hip + knee pitch
        setj("left_ankle", _rot("x", -0.9 * (hip_l + knee_l)))
        setj("right_ankle", _rot("x", -0.9 * (hip_r + knee_r)))
        swing = 0.8 * amp
        setj("left_shoulder", _rot("x", -hip_r * 0.8 + 0 * swing) @ arm_l)
        setj("right_shoulder", _rot("x", -hip_l * 0.8) @ arm_r)
        elbow = (1.3 if jog else 0.25) * np.ones(n)
        setj("left_elbow", _rot("y", -elbow))
        setj("right_elbow", _rot("y", elbow))
        if jog:
            setj("spine1", _rot("x", 0.15 + z))
        base = {"walk_forward": 1.2, "walk_backward": -0.7, "jog": 2.6}.get(kind, 0.0)
        vel[:, 0] = base * speed
        if kind == "turn_in_place":
            vel[:, 2] = 0.9 * speed
        if kind == "side_step":
            vel[:, 1] = 0.45 * speed
    elif kind == "squat":
        depth = 0.5 - 0.5 * np.cos(2 * np.pi * 0.35 * speed * t)
        setj("left_hip", _rot("x", -1.5 * depth))
        setj("right_hip", _rot("x", -1.5 * depth))
        setj("left_knee", _rot("x", 2.0 * depth))
        setj("right_knee", _rot("x", 2.0 * depth))
        setj("left_ankle", _rot("x", -0.5 * depth))
        setj("right_ankle", _rot("x", -0.5 * depth))
        setj("spine1", _rot("x", 0.45 * depth))
        setj("left_shoulder", _rot("x", -1.3 * depth) @ arm_l)
        setj("right_shoulder", _rot("x", -1.3 * depth) @ arm_r)
    elif kind == "wave":
        setj("right_shoulder", _rot("z", z - 0.35))
        setj("right_elbow", _rot("z", -(1.2 + 0.45 * np.sin(2 * np.pi * 1.6 * speed * t))))
    elif kind == "reach":
        reach = 0.5 - 0.5 * np.cos(2 * np.pi * 0.3 * speed * t)
        setj("left_shoulder", _rot("x", -1.35 * reach) @ arm_l)
        setj("right_shoulder", _rot("x", -1.35 * reach) @ arm_r)
        setj("left_elbow", _rot("y", -0.6 * (1 - reach)))
        setj("right_elbow", _rot("y", 0.6 * (1 - reach)))
        setj("spine1", _rot("x", 0.35 * reach))
        setj("left_hip", _rot("x", -0.25 * reach))
        setj("right_hip", _rot("x", -0.25 * reach))
    elif kind == "stand":
        sway = 0.04 * np.sin(2 * np.pi * 0.2 * t)
        setj("left_hip", _rot("z", sway))
        setj("right_hip", _rot("z", sway))
        setj("neck", _rot("y", 0.3 * np.sin(2 * np.pi * 0.1 * t)))
    else:
        raise ValueError(f"unknown motion kind {kind!r}; expected one of {KINDS}")
    return r, vel


def generate(segments: list[Segment], fps: float, beta0: float, fade_s: float = 0.5,
             yaw0: float = 0.0) -> dict[str, np.ndarray]:
    """SMPL-X parameters (y-up, SMPL canonical) for a chain of segments.

    Returns root_orient (T, 3), pose_body (T, 63), trans (T, 3) [m], betas (T, 10), labels (T,)
    index into `segments`.
    """
    bounds = np.cumsum([0.0] + [s.seconds for s in segments])
    n = int(round(bounds[-1] * fps))
    t = np.arange(n) / fps
    aa = np.zeros((n, 22, 3))
    vel = np.zeros((n, 3))
    weight = np.zeros(n)
    label = np.zeros(n, dtype=np.int64)
    for i, seg in enumerate(segments):
        lo, hi = bounds[i], bounds[i + 1]
        # tent weights overlapping by fade_s, so kinds blend instead of snapping
        w = np.clip(np.minimum(t - lo + fade_s / 2, hi + fade_s / 2 - t) / fade_s, 0, 1)
        if i == 0:
            w[t < lo + fade_s] = np.maximum(w[t < lo + fade_s], (t < hi)[t < lo + fade_s])
        if i == len(segments) - 1:
            w[t >= hi - fade_s] = np.maximum(w[t >= hi - fade_s], (t >= lo)[t >= hi - fade_s])
        m = w > 0
        if not m.any():
            continue
        rots, v = _pose(seg.kind, t[m] - lo, seg.speed)
        aa[m] += w[m, None, None] * matrix_to_axis_angle(rots)
        vel[m] += w[m, None] * v
        weight[m] += w[m]
        label[(t >= lo) & (t < hi)] = i
    aa /= np.maximum(weight, 1e-9)[:, None, None]
    vel /= np.maximum(weight, 1e-9)[:, None]
    yaw = yaw0 + np.cumsum(vel[:, 2]) / fps
    root = _rot("y", yaw) @ axis_angle_to_matrix(aa[:, 0])
    aa[:, 0] = matrix_to_axis_angle(root)
    betas = np.zeros((n, 10))
    betas[:, 0] = beta0
    body = BuiltinSkeleton("smplx")
    pose_body = aa[:, 1:22].reshape(n, 63)
    joints = body.joints(aa[:, 0], pose_body, np.zeros((n, 3)), betas)
    feet = [J["left_ankle"], J["right_ankle"], J["left_foot"], J["right_foot"]]
    height = FOOT_CLEARANCE_M - joints[:, feet, 1].min(axis=1)
    # The body travels by pushing off its stance foot: the root moves so that the lower foot stays
    # planted, which makes gait speed follow the legs and keeps feet from sliding.
    foot_y = np.minimum(joints[:, [J["left_ankle"], J["right_ankle"]], 1], joints[:, [J["left_foot"], J["right_foot"]], 1])
    side = np.empty(n, dtype=np.int64)
    side[0] = int(foot_y[0, 1] < foot_y[0, 0])
    for t in range(1, n):  # hysteresis: hand over to the other foot once it is clearly lower
        other = 1 - side[t - 1]
        side[t] = other if foot_y[t, other] < foot_y[t, side[t - 1]] - 0.01 else side[t - 1]
    stance = np.where(side == 0, J["left_ankle"], J["right_ankle"])
    step = joints[1:, :, [0, 2]] - joints[:-1, :, [0, 2]]
    d = step[np.arange(n - 1), stance[1:]]
    xz = np.concatenate([np.zeros((1, 2)), -np.cumsum(d, axis=0)])
    trans = np.stack([xz[:, 0], height, xz[:, 1]], -1)
    return {"root_orient": aa[:, 0], "pose_body": pose_body, "trans": trans, "betas": betas, "labels": label}
