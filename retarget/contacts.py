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


SOLE_MAX_M = 0.1  # ankle/toe keypoints of any skeleton sit at most this far above the sole


def support_heights(foot_z: np.ndarray, floor_z_m: float | None = None) -> np.ndarray:
    """Height [m] of what each foot stands on, so a foot on a box stays on the box and a foot on
    the floor goes to z = 0. foot_z: (T, 2) lowest foot keypoint per frame.

    floor_z_m: the floor height in the source frame when known (floor-calibrated mocap); else the
    clip's lowest feet are taken as the floor (right unless the whole clip stands on something).
    """
    low = np.percentile(foot_z.min(axis=1), 5)
    floor = low if floor_z_m is None else floor_z_m + float(np.clip(low - floor_z_m, 0.0, SOLE_MAX_M))
    return np.maximum(foot_z - floor, 0.0)


def ground_offsets(foot_low_z: np.ndarray, contact: np.ndarray, support_z: np.ndarray | None = None,
                   smooth_frames: int = 5) -> np.ndarray:
    """Vertical root shift (T,) [m] so that feet in contact touch their support (z = 0 on the floor)
    and no foot goes below the floor.

    foot_low_z: (T, 2) lowest collision point of each foot before the shift; support_z: (T, 2)
    height of the surface under each foot (default: the floor, 0).
    """
    t = len(foot_low_z)
    support_z = np.zeros_like(foot_low_z) if support_z is None else support_z
    want = np.full(t, np.nan)
    any_c = contact.any(axis=1)
    gap = np.where(contact, foot_low_z - support_z, np.inf).min(axis=1)
    want[any_c] = -gap[any_c]
    if np.isnan(want).all():
        want[:] = -foot_low_z.min()  # airborne clip: just keep it above the floor
    idx = np.arange(t)
    known = ~np.isnan(want)
    off = np.interp(idx, idx[known], want[known])
    off = uniform_filter1d(off, size=smooth_frames, mode="nearest")
    return np.maximum(off, -foot_low_z.min(axis=1))  # never below the floor
