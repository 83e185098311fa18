"""The robot-motion format: one class, read and written as BeyondMimic-layout npz.

BeyondMimic keys: fps, joint_names, joint_pos (T, n_dof) [rad], joint_vel (T, n_dof) [rad/s],
body_names (MuJoCo order), body_pos_w (T, B, 3) [m], body_quat_w (T, B, 4) wxyz,
body_lin_vel_w (T, B, 3) [m/s], body_ang_vel_w (T, B, 3) [rad/s]; we add contact (T, 2) (left, right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from retarget.robot import G1


@dataclass
class RobotMotion:
    """Root + joints of a G1 motion, z-up, wxyz, joints in `joint_names` order."""

    fps: float
    joint_names: tuple[str, ...]
    root_pos_w: np.ndarray  # (T, 3) [m]
    root_quat_wxyz: np.ndarray  # (T, 4)
    joint_pos: np.ndarray  # (T, n_dof) [rad]
    contact: np.ndarray | None = None  # (T, 2) bool

    @property
    def n_frames(self) -> int:
        return len(self.root_pos_w)

    def resampled(self, fps: float) -> "RobotMotion":
        """Linear joints/positions and slerped root rotation at a new rate, same duration."""
        if abs(fps - self.fps) < 1e-9:
            return self
        t_src = np.arange(self.n_frames) / self.fps
        t_dst = np.arange(int(np.floor(t_src[-1] * fps + 1e-6)) + 1) / fps
        lerp = lambda x: np.stack([np.interp(t_dst, t_src, c) for c in x.reshape(len(x), -1).T], -1).reshape(  # noqa: E731
            (len(t_dst),) + x.shape[1:])
        rot = Slerp(t_src, Rotation.from_quat(self.root_quat_wxyz, scalar_first=True))(t_dst)
        contact = None
        if self.contact is not None:
            contact = self.contact[np.clip(np.rint(t_dst * self.fps).astype(int), 0, self.n_frames - 1)]
        return RobotMotion(fps, self.joint_names, lerp(self.root_pos_w), rot.as_quat(scalar_first=True),
                           lerp(self.joint_pos), contact)

    def to_beyondmimic(self, robot: G1) -> dict[str, np.ndarray]:
        qpos = robot.qpos(self.root_pos_w, self.root_quat_wxyz, self.joint_pos)
        body_pos, body_quat = robot.bodies(qpos)
        dt = 1.0 / self.fps
        rots = Rotation.from_quat(body_quat.reshape(-1, 4), scalar_first=True)
        r = rots.as_matrix().reshape(body_quat.shape[:2] + (3, 3))
        ang = np.zeros_like(body_pos)
        if self.n_frames > 1:
            rel = np.einsum("tbij,tbkj->tbik", r[1:], r[:-1])  # R_{t+1} R_t^T
            w = Rotation.from_matrix(rel.reshape(-1, 3, 3)).as_rotvec().reshape(rel.shape[:2] + (3,)) / dt
            ang[:-1] = w
            ang[-1] = w[-1]
        out = {
            "fps": np.array(self.fps, dtype=np.float64),
            "joint_names": np.array(self.joint_names), "body_names": np.array(robot.body_names),
            "joint_pos": self.joint_pos.astype(np.float32),
            "joint_vel": np.gradient(self.joint_pos, dt, axis=0).astype(np.float32) if self.n_frames > 1
            else np.zeros_like(self.joint_pos, dtype=np.float32),
            "body_pos_w": body_pos.astype(np.float32), "body_quat_w": body_quat.astype(np.float32),
            "body_lin_vel_w": (np.gradient(body_pos, dt, axis=0) if self.n_frames > 1 else np.zeros_like(body_pos)).astype(np.float32),
            "body_ang_vel_w": ang.astype(np.float32),
        }
        if self.contact is not None:
            out["contact"] = self.contact.astype(np.uint8)
        return out

    @classmethod
    def from_beyondmimic(cls, d: dict[str, np.ndarray], joint_names: tuple[str, ...] | None = None) -> "RobotMotion":
        """Root from body 0 (the pelvis), joints as stored."""
        names = tuple(str(x) for x in d["joint_names"]) if "joint_names" in d else joint_names
        if names is None:
            raise ValueError("this BeyondMimic file has no joint_names; pass the robot's joint order")
        contact = d["contact"].astype(bool) if "contact" in d else None
        fps = float(np.asarray(d["fps"]).reshape(-1)[0])  # some writers store fps as shape (1,)
        return cls(fps, names, d["body_pos_w"][:, 0].astype(np.float64),
                   d["body_quat_w"][:, 0].astype(np.float64), d["joint_pos"].astype(np.float64), contact)
