"""Quality metrics of a retargeted clip, defined to be comparable with GMR and holosoma reports.

- MPKPE-aligned: after one uniform scale and one translation per clip (least squares over all frames
  and keypoints, no rotation), mean and max distance [m] between robot and human keypoints, and the
  frame of the max (so the worst clips and their worst moment are one SQL query away).
- Foot skate: mean horizontal speed [cm/s] of each ankle-roll body over the frame pairs where that
  foot's lowest collision point is within 2 cm of the ground at both ends.
- Penetration: deepest point of the foot collision geometry below z = 0 over the clip [cm].
- Limit violations: frame-joint pairs outside the MJCF ranges by more than 1e-3 rad (and velocity
  limit violations, reported separately).
- Self-collision frames: frames with a MuJoCo contact between two robot bodies (the floor excluded;
  MuJoCo already skips parent-child pairs).
"""

from __future__ import annotations

import mujoco
import numpy as np

from retarget.robot import G1

SKATE_CONTACT_M = 0.02
LIMIT_TOL_RAD = 1e-3


def mpkpe_aligned(robot_kp: np.ndarray, human_kp: np.ndarray) -> tuple[float, float]:
    """robot_kp, human_kp: (T, K, 3) -> (mean, max) [m] after the best scale + translation."""
    mean_m, max_m, _ = mpkpe_aligned_worst(robot_kp, human_kp)
    return mean_m, max_m


def mpkpe_aligned_worst(robot_kp: np.ndarray, human_kp: np.ndarray) -> tuple[float, float, int]:
    """(mean [m], max [m], frame of the max) after the best scale + translation; robot_kp, human_kp: (T, K, 3)."""
    h = human_kp.reshape(-1, 3)
    r = robot_kp.reshape(-1, 3)
    hc, rc = h - h.mean(0), r - r.mean(0)
    a = float((hc * rc).sum() / max((hc * hc).sum(), 1e-12))
    err = np.linalg.norm(a * hc - rc, axis=-1)
    worst = int(np.argmax(err)) // robot_kp.shape[1]
    return float(err.mean()), float(err.max()), worst


def foot_skate_cm_s(ankle_xy: np.ndarray, foot_low_z: np.ndarray, fps: float) -> float:
    """ankle_xy: (T, 2, 2) per foot; foot_low_z: (T, 2)."""
    near = foot_low_z < SKATE_CONTACT_M
    both = near[1:] & near[:-1]
    if not both.any():
        return 0.0
    speed = np.linalg.norm(np.diff(ankle_xy, axis=0), axis=-1) * fps
    return float(speed[both].mean() * 100.0)


def penetration_cm(foot_low_z: np.ndarray) -> float:
    return float(max(0.0, -foot_low_z.min()) * 100.0)


def limit_violations(joint_pos: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float = LIMIT_TOL_RAD) -> int:
    return int(((joint_pos < lower - tol) | (joint_pos > upper + tol)).sum())


def velocity_violations(joint_pos: np.ndarray, vmax: np.ndarray, fps: float) -> int:
    if len(joint_pos) < 2:
        return 0
    return int((np.abs(np.diff(joint_pos, axis=0)) * fps > vmax * (1 + 1e-6)).sum())


def self_collision_frames(robot: G1, qpos: np.ndarray) -> int:
    m, d = robot.mj, robot.mj_data
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    frames = 0
    for q in qpos:
        d.qpos[:] = q
        mujoco.mj_fwdPosition(m, d)
        hit = any(c.geom1 != floor and c.geom2 != floor and c.dist < 0 for c in d.contact[: d.ncon])
        frames += int(hit)
    return frames
