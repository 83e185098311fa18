"""Tiny numpy renderers for the sample videos (z-up world, metres).

- `render_third_person`: a stick/capsule body seen by a fixed camera over a checker floor.
- `render_egocentric`: the view from the moving head: checker floor with coloured tiles and a sky,
  moving consistently with the head pose.
Fast (a few ms a frame at 128 px) and deterministic; plumbing for the pipeline, not realism.
"""

from __future__ import annotations

import numpy as np

from ingest.skeletons import SMPL_BODY_22, SMPL_BODY_22_PARENTS
from robomirror.draw import draw_capsule, look_at

_LEFT = (60, 110, 230)
_RIGHT = (230, 80, 60)
_MID = (200, 200, 200)


_LANDMARKS = ((2.0, 0.0, (200, 60, 60)), (0.0, 2.5, (60, 180, 60)), (-2.0, -1.5, (60, 90, 200)),
              (3.5, 3.0, (210, 190, 40)))  # a few coloured tiles so egocentric motion is easy to see
_PALETTE = np.array([(70, 75, 70), (120, 120, 110), *(c for _, _, c in _LANDMARKS)], dtype=np.float64)


def _floor_index(x: np.ndarray, y: np.ndarray, tile_m: float = 0.5) -> np.ndarray:
    """Per ray: 0 / 1 the checker's dark / light tile, 2 + k the k-th landmark tile (the last one wins)."""
    idx = ((np.floor(x / tile_m) + np.floor(y / tile_m)) % 2 > 0).astype(np.intp)
    for k, (cx, cy, _) in enumerate(_LANDMARKS):
        idx[(np.abs(x - cx) < 0.4) & (np.abs(y - cy) < 0.4)] = 2 + k
    return idx


def _floor_colour(x: np.ndarray, y: np.ndarray, tile_m: float = 0.5) -> np.ndarray:
    return _PALETTE[_floor_index(x, y, tile_m)]


_RAYS: dict[tuple[int, float], np.ndarray] = {}  # (size, fov) -> unit camera-frame rays (read-only)


def _rays(size: int, fov_deg: float) -> np.ndarray:
    key = (size, float(fov_deg))
    if key not in _RAYS:
        f = 0.5 * size / np.tan(np.radians(fov_deg) / 2)
        u, v = np.meshgrid(np.arange(size) + 0.5 - size / 2, np.arange(size) + 0.5 - size / 2)
        d = np.stack([u / f, v / f, np.ones_like(u)], -1)
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        d.flags.writeable = False
        _RAYS[key] = d
    return _RAYS[key]


def _background(eye: np.ndarray, r_wc: np.ndarray, size: int, fov_deg: float) -> np.ndarray:
    """Sky above the horizon, the checker floor (z = 0) below it, darkening with distance."""
    dirs = _rays(size, fov_deg) @ r_wc  # camera -> world
    dz = dirs[..., 2]
    down = dz < -1e-3
    s = np.where(down, -eye[2] / np.where(down, dz, -1.0), 0.0)
    out = np.empty((size, size, 3), np.uint8)
    sky = np.array([150, 190, 235]) * (0.7 + 0.3 * np.clip(dz[~down], 0, 1))[:, None]
    out[~down] = sky.astype(np.uint8)
    sd = s[down]
    hx, hy = eye[0] + sd * dirs[..., 0][down], eye[1] + sd * dirs[..., 1][down]
    out[down] = (_floor_colour(hx, hy) * np.exp(-0.03 * sd)[:, None]).astype(np.uint8)
    return out


def render_third_person(joints_w: np.ndarray, size: int = 128, fov_deg: float = 50.0) -> list[np.ndarray]:
    """joints_w: (T, >=22, 3) SMPL-order joints, z-up [m].

    A camera on a fixed tripod a few metres from the middle of the path pans to follow the pelvis.
    """
    body = joints_w[:, :22]
    lo, hi = body.reshape(-1, 3).min(0), body.reshape(-1, 3).max(0)
    centre = 0.5 * (lo + hi)
    dist = min(4.0 + 0.35 * np.linalg.norm(hi[:2] - lo[:2]), 9.0)
    eye = np.array([centre[0] + 0.6 * dist, centre[1] - 0.8 * dist, 1.5])
    f = 0.5 * size / np.tan(np.radians(fov_deg) / 2)
    frames = []
    for jt in body:
        r_wc = look_at(eye, np.array([jt[0, 0], jt[0, 1], 0.9]))
        cam = (jt - eye) @ r_wc.T
        uv = cam[:, :2] / np.maximum(cam[:, 2:3], 1e-3) * f + size / 2
        img = _background(eye, r_wc, size, fov_deg)
        bones = sorted(range(1, 22), key=lambda j: -(cam[j, 2] + cam[SMPL_BODY_22_PARENTS[j], 2]))
        for j in bones:
            name = SMPL_BODY_22[j]
            col = _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID
            rad = max(1.0, 0.05 * f / max(cam[j, 2], 0.1))
            draw_capsule(img, uv[SMPL_BODY_22_PARENTS[j]], uv[j], rad, col)
        head = SMPL_BODY_22.index("head")
        draw_capsule(img, uv[head], uv[head], max(2.0, 0.11 * f / max(cam[head, 2], 0.1)), (240, 210, 170))
        frames.append(img)
    return frames


def render_egocentric(head_pos_w: np.ndarray, head_rot_w: np.ndarray, size: int = 128,
                      fov_deg: float = 100.0, pitch_down_rad: float = 0.45) -> list[np.ndarray]:
    """head_pos_w: (T, 3) [m]; head_rot_w: (T, 3, 3) body-frame axes (x left, y up, z forward)
    of the head in the z-up world. The camera looks along the head's forward axis, tilted down."""
    frames = []
    c, s = np.cos(pitch_down_rad), np.sin(pitch_down_rad)
    for p, r in zip(head_pos_w, head_rot_w, strict=True):
        left, up, fwd = r[:, 0], r[:, 1], r[:, 2]
        f = c * fwd - s * up
        d = -(s * fwd + c * up)
        r_wc = np.stack([-left, d, f])
        frames.append(_background(p + 0.1 * fwd, r_wc, size, fov_deg))
    return frames
