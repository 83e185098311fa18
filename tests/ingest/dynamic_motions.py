"""Dynamic human motions built with the body model, as SMPL-X parameters in the SMPL canonical y-up frame.

Each motion is keyframed angles (root rotation about world axes, joint rotations about body axes)
eased between keys; the root is then placed so the lowest body joint rests on the floor (y = 0, joint
centre `JOINT_CLEARANCE_M` above it) in every frame, except in flight, where the mean body joint follows
a ballistic arc under g. Used by the up-axis tests (written as Motion-X files, y-up and z-up) and the
retarget tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.body_model import BuiltinSkeleton
from ingest.motionx import LAYOUTS, MOTIONX_COLUMNS, MOTIONX_WIDTH, rotate_params
from ingest.skeletons import SMPL_BODY_22
from ingest.up_axis import G_M_S2, JOINT_CLEARANCE_M
from robomirror.rotations import R_ZUP_FROM_YUP, axis_angle_to_matrix, matrix_to_axis_angle

FPS = 30.0
J = {n: i for i, n in enumerate(SMPL_BODY_22)}
PI = np.pi
ARMS_DOWN = {"left_shoulder.z": -1.25, "right_shoulder.z": 1.25}
ARMS_UP = {"left_shoulder.z": 1.4, "right_shoulder.z": -1.4}


@dataclass(frozen=True)
class Built:
    name: str
    params: dict[str, np.ndarray]  # root_orient (T, 3), pose_body (T, 63), trans (T, 3), betas (T, 10); y-up
    standing: np.ndarray  # (T,) bool: frames where the body stands on both feet
    fps: float = FPS


def _rot(axis: str, angle: np.ndarray) -> np.ndarray:
    v = np.zeros(np.shape(angle) + (3,))
    v[..., "xyz".index(axis)] = angle
    return axis_angle_to_matrix(v)


def _channels(keys: list[tuple[float, dict[str, float]]], t: np.ndarray) -> dict[str, np.ndarray]:
    """Channel -> value per frame; a channel a key omits holds its previous value (0 at first)."""
    names = sorted({c for _, k in keys for c in k})
    out = {}
    for c in names:
        vals, last = [], 0.0
        for _, k in keys:
            last = k.get(c, last)
            vals.append(last)
        times = np.array([k[0] for k in keys])
        i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
        a = np.clip((t - times[i]) / np.maximum(times[i + 1] - times[i], 1e-9), 0, 1)
        ease = a * a * (3 - 2 * a)
        v = np.array(vals)
        out[c] = v[i] + ease * (v[i + 1] - v[i])
    return out


def build(name: str, keys: list[tuple[float, dict[str, float]]], standing: list[tuple[float, float]],
          flights: tuple[tuple[float, float], ...] = (), beta0: float = 0.0) -> Built:
    n = int(round(keys[-1][0] * FPS)) + 1
    t = np.arange(n) / FPS
    ch = _channels(keys, t)
    zero = np.zeros(n)
    local = np.broadcast_to(np.eye(3), (n, 22, 3, 3)).copy()
    for c, v in ch.items():
        joint, _, axis = c.partition(".")
        if joint in J and joint != "pelvis":
            local[:, J[joint]] = local[:, J[joint]] @ _rot(axis, v)
    root = _rot("y", ch.get("yaw", zero)) @ _rot("z", ch.get("roll", zero)) @ _rot("x", ch.get("pitch", zero))
    aa = matrix_to_axis_angle(local)
    aa[:, 0] = matrix_to_axis_angle(root)
    betas = np.zeros((n, 10))
    betas[:, 0] = beta0
    pose_body = aa[:, 1:22].reshape(n, 63)
    joints = BuiltinSkeleton("smplx").joints(aa[:, 0], pose_body, np.zeros((n, 3)), betas)[:, :22]
    height = JOINT_CLEARANCE_M - joints[..., 1].min(1)
    trans = np.stack([ch.get("x", zero), height, ch.get("z", zero)], -1)
    for t0, t1 in flights:  # the mean body joint falls with g between take-off and landing ...
        com = joints.mean(1) + trans
        i0, i1 = int(round(t0 * FPS)), int(round(t1 * FPS))
        dur = (i1 - i0) / FPS
        s = (np.arange(i0, i1 + 1) - i0) / FPS
        v0 = (com[i1, 1] - com[i0, 1]) / dur + 0.5 * G_M_S2 * dur
        trans[i0:i1 + 1, 1] += com[i0, 1] + v0 * s - 0.5 * G_M_S2 * s * s - com[i0:i1 + 1, 1]
        w = (s / dur)[:, None]  # ... and moves at a constant horizontal velocity
        trans[i0:i1 + 1, [0, 2]] += (1 - w) * com[i0, [0, 2]] + w * com[i1, [0, 2]] - com[i0:i1 + 1, [0, 2]]
    stand = np.zeros(n, dtype=bool)
    for a, b in standing:
        stand |= (t >= a) & (t <= b)
    return Built(name, {"root_orient": aa[:, 0], "pose_body": pose_body, "trans": trans, "betas": betas}, stand)


def cartwheel() -> Built:
    """A full turn about the forward axis, travelling sideways on hands and feet."""
    x = {"left_hip.z": 0.5, "right_hip.z": -0.5, **ARMS_UP}
    return build("cartwheel", [(0.0, ARMS_DOWN), (0.5, x), (0.7, {**x, "roll": 0.0}),
                               (1.9, {**x, "roll": 2 * PI, "x": -1.8}), (2.2, {**ARMS_DOWN, "left_hip.z": 0.0,
                                                                            "right_hip.z": 0.0, "x": -1.8}),
                               (2.7, {})], standing=[(0.0, 0.4), (2.2, 2.7)])


def backflip() -> Built:
    """A full turn about the lateral axis, airborne, from standing to standing."""
    crouch = {"left_hip.x": -1.0, "right_hip.x": -1.0, "left_knee.x": 1.4, "right_knee.x": 1.4,
              "left_ankle.x": -0.4, "right_ankle.x": -0.4}
    tuck = {"left_hip.x": -1.9, "right_hip.x": -1.9, "left_knee.x": 2.1, "right_knee.x": 2.1}
    straight = {k: 0.0 for k in crouch}
    return build("backflip", [(0.0, {**ARMS_DOWN}), (0.5, {}), (0.8, crouch), (1.0, {**straight, "pitch": 0.0}),
                              (1.3, {**tuck, "pitch": -PI}), (1.6, {**straight, "pitch": -2 * PI}),
                              (1.8, crouch), (2.1, straight), (2.6, {})],
                 standing=[(0.0, 0.5), (2.1, 2.6)], flights=((1.0, 1.6),))


def roll() -> Built:
    """A forward roll on the floor: crouch, a full turn about the lateral axis in a ball, stand up."""
    ball = {"left_hip.x": -2.2, "right_hip.x": -2.2, "left_knee.x": 2.3, "right_knee.x": 2.3,
            "spine1.x": 0.5, "spine2.x": 0.4, "neck.x": 0.6}
    up = {k: 0.0 for k in ball}
    return build("roll", [(0.0, ARMS_DOWN), (0.5, {}), (0.9, {**ball, "pitch": 0.0}), (1.3, {"pitch": 1.2}),
                          (2.1, {"pitch": 2 * PI, "z": 1.2}), (2.5, up), (3.0, {})],
                 standing=[(0.0, 0.5), (2.6, 3.0)])


def crawl() -> Built:
    """On hands and knees throughout: the body horizontal in every frame, crawling forward."""
    base = {"pitch": PI / 2, "left_hip.x": -PI / 2, "right_hip.x": -PI / 2, "left_knee.x": PI / 2,
            "right_knee.x": PI / 2, "left_shoulder.x": -PI / 2, "right_shoulder.x": -PI / 2, "neck.x": -0.8, **ARMS_DOWN}
    keys = [(0.0, {**base, "z": 0.0})]
    for i in range(1, 7):  # alternate the diagonal limbs forward
        s = 0.25 if i % 2 else -0.25
        keys.append((0.5 * i, {"z": 0.2 * i, "left_hip.x": -PI / 2 - s, "right_hip.x": -PI / 2 + s,
                               "left_shoulder.x": -PI / 2 + s, "right_shoulder.x": -PI / 2 - s}))
    return build("crawl", keys, standing=[])


def getup_faceup() -> Built:
    """Lying on the back, sit up, tuck the feet in, stand."""
    return build("getup_faceup", [(0.0, {"pitch": -PI / 2, **ARMS_DOWN}), (0.6, {}),
                                  (1.2, {"pitch": 0.0, "left_hip.x": -PI / 2, "right_hip.x": -PI / 2}),
                                  (1.8, {"pitch": 0.5, "left_hip.x": -2.1, "right_hip.x": -2.1, "left_knee.x": 2.3,
                                         "right_knee.x": 2.3}),
                                  (2.6, {"pitch": 0.0, "left_hip.x": 0.0, "right_hip.x": 0.0, "left_knee.x": 0.0,
                                         "right_knee.x": 0.0}), (3.1, {})],
                 standing=[(2.6, 3.1)])


def getup_facedown() -> Built:
    """Lying face down, push up to hands and knees, kneel up, stand."""
    fours = {"pitch": PI / 2, "left_hip.x": -PI / 2, "right_hip.x": -PI / 2, "left_knee.x": PI / 2,
             "right_knee.x": PI / 2, "left_shoulder.x": -PI / 2, "right_shoulder.x": -PI / 2}
    return build("getup_facedown", [(0.0, {"pitch": PI / 2, "left_shoulder.x": -0.3, "right_shoulder.x": -0.3,
                                           **ARMS_DOWN}),
                                    (0.6, {}), (1.2, fours),
                                    (1.8, {"pitch": 0.0, "left_hip.x": 0.0, "right_hip.x": 0.0,
                                           "left_shoulder.x": 0.0, "right_shoulder.x": 0.0, **ARMS_DOWN}),
                                    (2.4, {"left_hip.x": -1.5, "right_hip.x": -1.5, "left_knee.x": 2.0,
                                           "right_knee.x": 2.0, "pitch": 0.4}),
                                    (3.0, {"left_hip.x": 0.0, "right_hip.x": 0.0, "left_knee.x": 0.0,
                                           "right_knee.x": 0.0, "pitch": 0.0}), (3.5, {})],
                 standing=[(3.0, 3.5)])


def spinkick() -> Built:
    """A full turn on one foot with the other leg kicking out sideways."""
    kick = {"right_hip.z": -1.3, "right_knee.x": 0.2, "left_shoulder.z": 0.0, "right_shoulder.z": 0.0}
    return build("spinkick", [(0.0, {**ARMS_DOWN, "yaw": 0.0}), (0.5, {}), (0.8, {**kick, "yaw": 0.6}),
                              (1.4, {"yaw": 2 * PI - 0.6}),
                              (1.7, {"right_hip.z": 0.0, "right_knee.x": 0.0, **ARMS_DOWN, "yaw": 2 * PI}),
                              (2.2, {})], standing=[(0.0, 0.5), (1.8, 2.2)])


def handstand() -> Built:
    """Arms up, tip over forward onto the hands, hold upside down, come back."""
    return build("handstand", [(0.0, {**ARMS_UP, "pitch": 0.0}), (0.5, {}), (1.1, {"pitch": PI}),
                               (2.6, {}), (3.2, {"pitch": 0.0}), (3.7, {**ARMS_DOWN})],
                 standing=[(0.0, 0.5), (3.2, 3.7)])


def jog() -> Built:
    """A short jog: strides of 0.3 s, each with a brief flight (0.1 s: 3 frames, ~1 cm up) and a surge of the
    forward speed (the body brakes at landing and pushes off again, as a runner's centre of mass does).
    Its flights are real but too short to measure g on: the flight evidence must abstain, not vote."""
    stride = {"left_hip.x": -0.6, "right_hip.x": 0.4, "left_knee.x": 0.3, "right_knee.x": 1.1,
              "left_shoulder.x": 0.4, "right_shoulder.x": -0.4}
    other = {"left_hip.x": 0.4, "right_hip.x": -0.6, "left_knee.x": 1.1, "right_knee.x": 0.3,
             "left_shoulder.x": -0.4, "right_shoulder.x": 0.4}
    keys = [(0.0, {**ARMS_DOWN, "z": 0.0}), (0.4, {})]
    for i in range(7):
        keys.append((0.7 + 0.3 * i, {**(stride if i % 2 == 0 else other), "z": 0.5 * (i + 1)}))
    keys += [(3.1, {k: 0.0 for k in stride}), (3.5, {})]
    flights = tuple((0.8 + 0.3 * i, 0.9 + 0.3 * i) for i in range(6))
    return build("jog", keys, standing=[(0.0, 0.4), (3.2, 3.5)], flights=flights)


MOTIONS = (cartwheel, backflip, roll, crawl, getup_faceup, getup_facedown, spinkick, handstand, jog)


def write_motionx(root: Path, subset: str, built: Built, up: str) -> None:
    """The motion as a Motion-X++ sequence (smplx_322 .npy + semantic label), y-up or z-up ("y" | "z")."""
    p = dict(built.params)
    if up == "z":
        n = len(p["trans"])
        z = np.zeros((n, 3))
        rest = BuiltinSkeleton("smplx").joints(z, np.zeros((n, 63)), z, p["betas"])[:, 0]
        p = rotate_params(p, rest, R_ZUP_FROM_YUP)
    row = np.zeros((len(p["trans"]), MOTIONX_WIDTH), dtype=np.float32)
    for k in ("root_orient", "pose_body", "trans", "betas"):
        a, b = MOTIONX_COLUMNS[k]
        row[:, a:b] = p[k]
    motion_dir, text_dir, _ = LAYOUTS["motionx++"]
    name = f"{built.name}_{up}up"
    (root / motion_dir / subset).mkdir(parents=True, exist_ok=True)
    (root / text_dir / subset).mkdir(parents=True, exist_ok=True)
    np.save(root / motion_dir / subset / f"{name}.npy", row)
    (root / text_dir / subset / f"{name}.txt").write_text(f"a person does a {built.name}\n")
