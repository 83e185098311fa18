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


def _floor_colour(x: np.ndarray, y: np.ndarray, tile_m: float = 0.5) -> np.ndarray:
    chk = (np.floor(x / tile_m) + np.floor(y / tile_m)) % 2
    col = np.where(chk[..., None] > 0, np.array([120, 120, 110]), np.array([70, 75, 70]))
    # a few coloured landmark tiles so egocentric motion is easy to see
    for cx, cy, c in ((2.0, 0.0, (200, 60, 60)), (0.0, 2.5, (60, 180, 60)), (-2.0, -1.5, (60, 90, 200)),
                      (3.5, 3.0, (210, 190, 40))):
        m = (np.abs(x - cx) < 0.4) & (np.abs(y - cy) < 0.4)
        col = np.where(m[..., None], np.array(c), col)
    return col


def _rays(size: int, fov_deg: float) -> np.ndarray:
    f = 0.5 * size / np.tan(np.radians(fov_deg) / 2)
    u, v = np.meshgrid(np.arange(size) + 0.5 - size / 2, np.arange(size) + 0.5 - size / 2)
    d = np.stack([u / f, v / f, np.ones_like(u)], -1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _background(eye: np.ndarray, r_wc: np.ndarray, size: int, fov_deg: float) -> np.ndarray:
    dirs = _rays(size, fov_deg) @ r_wc  # camera -> world
    down = dirs[..., 2] < -1e-3
    s = np.where(down, -eye[2] / np.where(down, dirs[..., 2], -1.0), 0.0)
    hit = eye + s[..., None] * dirs
    sky = (np.array([150, 190, 235]) * (0.7 + 0.3 * np.clip(dirs[..., 2:3], 0, 1))).astype(np.float64)
    floor = _floor_colour(hit[..., 0], hit[..., 1]) * np.exp(-0.03 * s)[..., None]
    return np.where(down[..., None], floor, sky).astype(np.uint8)


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
