"""Observation terms of the paper's Tables 6-7, laid out by `robomirror.g1_contract`.

Frames: `_b` is the robot's root (pelvis) frame, `_w` the world. Histories are newest first and a
reset fills every frame with the first observation (no zeros a real robot never produces).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from robomirror import g1_contract as g1
from robomirror.rotations import matrix_to_axis_angle, quat_wxyz_to_matrix


@dataclass
class RobotState:
    """What the simulator (or the robot) reports each policy step, one row per env."""

    joint_pos: np.ndarray  # (N, 23) [rad]
    joint_vel: np.ndarray  # (N, 23) [rad/s]
    root_pos_w: np.ndarray  # (N, 3)
    root_quat_w: np.ndarray  # (N, 4) wxyz
    root_lin_vel_w: np.ndarray  # (N, 3) [m/s]
    root_ang_vel_b: np.ndarray  # (N, 3) [rad/s] (the IMU's frame)
    kp_pos_w: np.ndarray  # (N, 27, 3)
    kp_quat_w: np.ndarray  # (N, 27, 4)
    kp_lin_vel_w: np.ndarray  # (N, 27, 3)
    kp_ang_vel_w: np.ndarray  # (N, 27, 3)
    foot_force_w: np.ndarray  # (N, 2, 3) [N], left, right
    self_collision: np.ndarray  # (N,) bool
    torque: np.ndarray  # (N, 23) [N m]
    # the same orientations as rotation matrices, when the reader has them (MuJoCo's xmat), else None
    root_rot_w: np.ndarray | None = None  # (N, 3, 3)
    kp_rot_w: np.ndarray | None = None  # (N, 27, 3, 3)

    @property
    def root_rot(self) -> np.ndarray:
        return quat_wxyz_to_matrix(self.root_quat_w) if self.root_rot_w is None else self.root_rot_w

    @property
    def kp_rot(self) -> np.ndarray:
        return quat_wxyz_to_matrix(self.kp_quat_w) if self.kp_rot_w is None else self.kp_rot_w


def to_body(rot_w: np.ndarray, v_w: np.ndarray) -> np.ndarray:
    """R^T v for (N, 3, 3) rotations and (N, ..., 3) vectors."""
    if v_w.ndim == 2:
        return np.einsum("nji,nj->ni", rot_w, v_w)
    return np.einsum("nji,nkj->nki", rot_w, v_w)


proprio = g1.proprio_frame
History = g1.ProprioHistory


def teacher_reference(s: RobotState, ref: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 114): the reference part of the teacher's 489 (after the 375 of proprioception)."""
    rot = s.root_rot
    ref_rot = quat_wxyz_to_matrix(ref["root_quat"])
    kp_b = to_body(rot, ref["kp_pos"] - s.root_pos_w[:, None, :]).reshape(len(rot), -1)
    rel = np.einsum("nji,njk->nik", rot, ref_rot)
    return np.concatenate([ref["joint_pos"], kp_b, to_body(ref_rot, ref["root_lin_vel"]),
                           to_body(ref_rot, ref["root_ang_vel"]), matrix_to_axis_angle(rel),
                           ref["root_pos"][:, 2:3]], -1)


def privileged(lin_vel_hist: np.ndarray, s: RobotState, ref: dict[str, np.ndarray], params: np.ndarray) -> np.ndarray:
    """(N, 250): root velocity history, reference body positions, body differences, randomized physics."""
    rot = s.root_rot
    ref_rel = (ref["kp_pos"] - ref["root_pos"][:, None, :]).reshape(len(rot), -1)
    diff_b = to_body(rot, ref["kp_pos"] - s.kp_pos_w).reshape(len(rot), -1)
    return np.concatenate([lin_vel_hist, ref_rel, diff_b, params], -1)


def with_height_map(obs: dict[str, np.ndarray], height_map: np.ndarray) -> dict[str, np.ndarray]:
    """The contract's optional terrain slice (`g1_contract.HEIGHT_MAP_TERM`, (N, 121)) appended last to the
    teacher's and the student's observations, and also kept as a group of its own ("height_map")."""
    out = dict(obs)
    for k in ("teacher", "student"):
        out[k] = np.concatenate([obs[k], height_map], -1)
    out["height_map"] = height_map
    return out


@functools.cache
def group_dims(latent_dim: int, height_map: bool = False) -> Mapping[str, int]:
    """The contract's width of every observation group the env hands out (built once: the env checks
    every thread's share of every step against it)."""
    dims = {"teacher": g1.teacher_obs(height_map).dim, "privileged": g1.PRIVILEGED_OBS.dim,
            "student": g1.student_obs(latent_dim, height_map).dim, "residual_base": g1.N_ACT}
    if height_map:
        dims["height_map"] = g1.HEIGHT_MAP_DIM
    return MappingProxyType(dims)


def check_layout(obs: dict[str, np.ndarray], latent_dim: int, height_map: bool = False) -> None:
    dims = group_dims(latent_dim, height_map)
    if obs.keys() - dims.keys():
        raise AssertionError(f"observation groups {sorted(obs.keys() - dims.keys())} are not in the contract; "
                             f"it has {sorted(dims)}")
    for k, d in dims.items():
        if k not in obs:
            raise AssertionError(f"observation group {k!r} is missing; the contract has it ({d} values)")
        if obs[k].shape[-1] != d:
            raise AssertionError(f"observation {k!r} has {obs[k].shape[-1]} values; the contract says {d}")
