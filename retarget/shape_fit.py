"""PHC-style shape fit for any source skeleton: per-segment scales.

For each segment of the keypoint tree (`correspondence.KEYPOINT_PARENT`) the human's
pose-invariant length (median over the clip) is matched to the G1's length in its zero pose. The
root (pelvis) trajectory is scaled by the leg-length ratio, so stride length and pelvis height
match the robot's legs. Targets then have the robot's proportions and the human's pose.
With real SMPL-X model files a betas fit could replace this; it is not done yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retarget.correspondence import KEYPOINT_PARENT, LEG_SEGMENTS


@dataclass(frozen=True)
class ShapeFit:
    root_scale: float  # human pelvis trajectory -> robot [ratio of leg lengths]
    segment_scale: dict[str, float]  # child keypoint -> robot / human length of its segment
    human_lengths_m: dict[str, float]
    robot_lengths_m: dict[str, float]
    betas_fit: dict | None = None  # retarget.betas_fit.BetasFit as a dict, when real model files were used


def _lengths(kp: dict[str, np.ndarray]) -> dict[str, float]:
    return {c: float(np.median(np.linalg.norm(kp[c] - kp[p], axis=-1))) for c, p in KEYPOINT_PARENT.items()
            if c in kp and p in kp}


def fit_shape(human_kp: dict[str, np.ndarray], robot_kp: dict[str, np.ndarray], blend: float = 0.5) -> ShapeFit:
    """blend = 1: every segment gets the robot's length (reachable targets, robot proportions);
    blend = 0: one scale for all (the human's proportions); in between, the geometric mean.
    The bench shows 0.5 scores best on MPKPE-aligned, which compares against the human's proportions."""
    h, r = _lengths(human_kp), _lengths(robot_kp)
    leg_h = sum(h[c] for _, c in LEG_SEGMENTS)
    leg_r = sum(r[c] for _, c in LEG_SEGMENTS)
    root = float(leg_r / max(leg_h, 1e-9))
    seg = {c: float((r[c] / max(h[c], 1e-9)) ** blend * root ** (1.0 - blend)) for c in h}
    return ShapeFit(root, seg, h, r)


def apply_shape(human_kp: dict[str, np.ndarray], fit: ShapeFit) -> dict[str, np.ndarray]:
    """Targets: the pelvis scaled by the leg ratio, every other keypoint placed from its parent
    along the human's segment direction with the robot's segment length."""
    out = {"pelvis": human_kp["pelvis"] * fit.root_scale}
    pending = [c for c in KEYPOINT_PARENT if c in human_kp]
    while pending:
        for c in list(pending):
            p = KEYPOINT_PARENT[c]
            if p in out:
                out[c] = out[p] + fit.segment_scale[c] * (human_kp[c] - human_kp[p])
                pending.remove(c)
    return out
