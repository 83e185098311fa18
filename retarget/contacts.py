"""Foot contact labels from height and speed, and grounding of the retargeted root."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

CONTACT_HEIGHT_M = 0.05  # foot within this of the clip's floor ...
CONTACT_SPEED_M_S = 0.35  # ... and moving slower than this horizontally is in contact


def contact_labels(foot_z: np.ndarray, foot_xy: np.ndarray, fps: float,
                   height_m: float = CONTACT_HEIGHT_M, speed_m_s: float = CONTACT_SPEED_M_S) -> np.ndarray:
    """foot_z: (T, 2) lowest foot point height [m]; foot_xy: (T, 2, 2) -> (T, 2) bool (left, right)."""
    floor = np.percentile(foot_z.min(axis=1), 5)
    speed = np.linalg.norm(np.gradient(foot_xy, axis=0), axis=-1) * fps
    return (foot_z - floor < height_m) & (speed < speed_m_s)


def ground_offsets(foot_low_z: np.ndarray, contact: np.ndarray, smooth_frames: int = 5) -> np.ndarray:
    """Vertical root shift (T,) [m] so that feet in contact touch z = 0 and no foot goes below it.

    foot_low_z: (T, 2) lowest collision point of each foot before the shift.
    """
    t = len(foot_low_z)
    want = np.full(t, np.nan)
    any_c = contact.any(axis=1)
    low_contact = np.where(contact, foot_low_z, np.inf).min(axis=1)
    want[any_c] = -low_contact[any_c]
    if np.isnan(want).all():
        want[:] = -foot_low_z.min()  # airborne clip: just keep it above the floor
    idx = np.arange(t)
    known = ~np.isnan(want)
    off = np.interp(idx, idx[known], want[known])
    off = uniform_filter1d(off, size=smooth_frames, mode="nearest")
    return np.maximum(off, -foot_low_z.min(axis=1))  # never below the floor
