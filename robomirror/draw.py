"""Tiny numpy drawing helpers shared by the sample renderer and the retarget debug videos."""

from __future__ import annotations

import numpy as np


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation world->camera rows (right, down, forward) for a camera at eye looking at target."""
    f = target - eye
    f = f / np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r = r / np.linalg.norm(r)
    d = np.cross(f, r)
    return np.stack([r, d, f])


def draw_capsule(img: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float, colour) -> None:
    h, w = img.shape[:2]
    lo = np.floor(np.minimum(a, b) - radius).astype(int)
    hi = np.ceil(np.maximum(a, b) + radius).astype(int)
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0] + 1, w), min(hi[1] + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
    ab = b - a
    t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / max(ab @ ab, 1e-9), 0, 1)
    d2 = (xx - a[0] - t * ab[0]) ** 2 + (yy - a[1] - t * ab[1]) ** 2
    img[y0:y1, x0:x1][d2 <= radius * radius] = colour
