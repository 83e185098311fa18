"""Reconstruction error of the motion VAE in the units people check: joints [rad] and keypoints [m].

Keypoints come from forward kinematics of the G1 (MuJoCo) with the root at the origin, so the
figure is the error the decoded joint angles make in body space, independent of root drift.
"""

from __future__ import annotations

import numpy as np


def joint_error_rad(rec: list[np.ndarray], ref: list[np.ndarray], n_dof: int) -> float:
    """Mean |Δq| over clips, frames and joints; features hold joint_pos in their first n_dof columns."""
    return float(np.mean([np.abs(r[:, :n_dof] - f[:, :n_dof]).mean() for r, f in zip(rec, ref, strict=True)]))


def keypoint_error_m(rec: list[np.ndarray], ref: list[np.ndarray], n_dof: int, stride: int = 5) -> float:
    """Mean keypoint distance [m] between FK of the decoded and the original joint angles (every
    `stride`-th frame; the figure is a mean, not a per-frame check)."""
    from retarget.g1 import METRIC_KEYPOINTS
    from retarget.robot import G1

    robot = G1("g1_29dof" if n_dof == 29 else "g1_23dof")
    errs = []
    for r, f in zip(rec, ref, strict=True):
        t = len(f[::stride])
        zeros, ident = np.zeros((t, 3)), np.tile([1.0, 0.0, 0.0, 0.0], (t, 1))
        a = robot.keypoints(robot.qpos(zeros, ident, r[::stride, :n_dof].astype(np.float64)), METRIC_KEYPOINTS)
        b = robot.keypoints(robot.qpos(zeros, ident, f[::stride, :n_dof].astype(np.float64)), METRIC_KEYPOINTS)
        errs.append(np.linalg.norm(a - b, axis=-1).mean())
    return float(np.mean(errs))
