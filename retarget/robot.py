"""The G1 loaded twice from one MJCF: MuJoCo (scene, FK, contacts, masses) and pinocchio (pink IK).

Conventions at this boundary: MuJoCo qpos = [root xyz, root quat wxyz, 29 joints]; pinocchio
q = [root xyz, root quat **xyzw**, joints of the robot configuration]. Everything outside this
module uses wxyz and the joint order of the robot configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import mujoco
import numpy as np
import pinocchio as pin

from retarget.g1 import (
    DEFAULT_CONFIG,
    FEET,
    FOOT_GEOM_PREFIX,
    KEYPOINT_FRAMES,
    MOTORS,
    RobotConfig,
    find_g1_xml,
    motor_of,
    robot_config,
    scene_spec,
)
from robomirror.rotations import quat_wxyz_to_xyzw, quat_xyzw_to_wxyz

ROOT_SPEED_LIMIT = 10.0  # [m/s, rad/s] generous cap on the floating base inside IK


def build_scene(xml: Path) -> mujoco.MjModel:
    """Robot + floor + light. The Menagerie G1 has no floor, actuators or keyframe."""
    return scene_spec(xml).compile()


@dataclass
class G1:
    """One G1 robot configuration (`g1_23dof` by default) with both kinematics backends."""

    config_name: str = DEFAULT_CONFIG
    robot_xml: str | None = None
    config: RobotConfig = field(init=False)
    xml: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config = robot_config(self.config_name)
        self.xml = find_g1_xml(self.robot_xml)

    # ---------------------------------------------------------------- MuJoCo
    @cached_property
    def mj(self) -> mujoco.MjModel:
        return build_scene(self.xml)

    @cached_property
    def mj_data(self) -> mujoco.MjData:
        return mujoco.MjData(self.mj)

    @cached_property
    def body_names(self) -> tuple[str, ...]:
        """Robot bodies in MuJoCo order (world excluded)."""
        return tuple(mujoco.mj_id2name(self.mj, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(1, self.mj.nbody))

    @cached_property
    def qposadr(self) -> np.ndarray:
        """MuJoCo qpos address of each configuration joint."""
        ids = [mujoco.mj_name2id(self.mj, mujoco.mjtObj.mjOBJ_JOINT, j) for j in self.config.joints]
        return self.mj.jnt_qposadr[ids]

    @cached_property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) [rad] of the configuration joints, from the MJCF."""
        ids = [mujoco.mj_name2id(self.mj, mujoco.mjtObj.mjOBJ_JOINT, j) for j in self.config.joints]
        r = self.mj.jnt_range[ids]
        return r[:, 0].copy(), r[:, 1].copy()

    @cached_property
    def velocity_limits(self) -> np.ndarray:
        return np.array([MOTORS[motor_of(j)][0] for j in self.config.joints])

    @cached_property
    def effort_limits(self) -> np.ndarray:
        return np.array([MOTORS[motor_of(j)][1] for j in self.config.joints])

    @cached_property
    def foot_geoms(self) -> dict[str, list[int]]:
        out = {}
        for side, prefix in FOOT_GEOM_PREFIX.items():
            out[side] = [g for g in range(self.mj.ngeom)
                         if (mujoco.mj_id2name(self.mj, mujoco.mjtObj.mjOBJ_GEOM, g) or "").startswith(prefix)]
        return out

    def qpos(self, root_pos: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
        """(T, 3), (T, 4), (T, n_dof) -> MuJoCo qpos (T, nq); locked joints at 0."""
        t = len(root_pos)
        q = np.zeros((t, self.mj.nq))
        q[:, :3] = root_pos
        q[:, 3:7] = root_quat_wxyz
        q[:, self.qposadr] = joint_pos
        return q

    def forward(self, qpos: np.ndarray) -> None:
        self.mj_data.qpos[:] = qpos
        mujoco.mj_kinematics(self.mj, self.mj_data)

    def bodies(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body positions (T, B, 3) [m] and quaternions (T, B, 4) wxyz in the world."""
        pos = np.empty((len(qpos), self.mj.nbody - 1, 3))
        quat = np.empty((len(qpos), self.mj.nbody - 1, 4))
        for i, q in enumerate(qpos):
            self.forward(q)
            pos[i] = self.mj_data.xpos[1:]
            quat[i] = self.mj_data.xquat[1:]
        return pos, quat

    def keypoints(self, qpos: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """World positions (T, K, 3) of named keypoint frames (see g1.KEYPOINT_FRAMES)."""
        ids = [mujoco.mj_name2id(self.mj, mujoco.mjtObj.mjOBJ_BODY, KEYPOINT_FRAMES[n][0]) for n in names]
        off = np.array([KEYPOINT_FRAMES[n][1] for n in names])
        out = np.empty((len(qpos), len(names), 3))
        for i, q in enumerate(qpos):
            self.forward(q)
            out[i] = self.mj_data.xpos[ids] + np.einsum("kij,kj->ki", self.mj_data.xmat[ids].reshape(-1, 3, 3), off)
        return out

    def foot_bottom_z(self, qpos: np.ndarray) -> np.ndarray:
        """Lowest point [m] of each foot's collision capsules, (T, 2) for (left, right)."""
        out = np.empty((len(qpos), 2))
        for i, q in enumerate(qpos):
            self.forward(q)
            for k, side in enumerate(("left", "right")):
                low = np.inf
                for g in self.foot_geoms[side]:
                    half = self.mj.geom_size[g, 1]
                    axis = self.mj_data.geom_xmat[g].reshape(3, 3)[:, 2]
                    c = self.mj_data.geom_xpos[g]
                    low = min(low, c[2] - abs(axis[2]) * half - self.mj.geom_size[g, 0])
                out[i, k] = low
        return out

    def sole_points_ankle_frame(self) -> dict[str, np.ndarray]:
        """side -> (P, 3) the lowest surface points of each foot capsule's two end spheres, in the
        ankle keypoint frame [m] (fixed geometry: computed once at the zero pose)."""
        if getattr(self, "_sole_points", None) is None:
            self.forward(self.zero_qpos)
            out = {}
            for side in ("left", "right"):
                body = self.mj.body(FEET[side]).id
                rot, pos = self.mj_data.xmat[body].reshape(3, 3), self.mj_data.xpos[body]
                pts = []
                for g in self.foot_geoms[side]:
                    half, radius = self.mj.geom_size[g, 1], self.mj.geom_size[g, 0]
                    axis, c = self.mj_data.geom_xmat[g].reshape(3, 3)[:, 2], self.mj_data.geom_xpos[g]
                    for end in (c + axis * half, c - axis * half):
                        pts.append(rot.T @ (end - pos) - rot.T @ np.array([0.0, 0.0, radius]))
                out[side] = np.array(pts)
            self._sole_points = out
        return self._sole_points

    @cached_property
    def zero_qpos(self) -> np.ndarray:
        q = np.zeros(self.mj.nq)
        q[2], q[3] = 0.793, 1.0
        return q

    # ------------------------------------------------------------- pinocchio
    @cached_property
    def pin_model(self) -> pin.Model:
        full = pin.buildModelFromMJCF(str(self.xml))
        # pinocchio caps the free flyer at +-1.01 m; pink would then refuse to move the base further.
        full.lowerPositionLimit[:7] = -np.inf
        full.upperPositionLimit[:7] = np.inf
        for name, (body, offset) in KEYPOINT_FRAMES.items():
            fid = full.getFrameId(body)
            parent = full.frames[fid]
            full.addFrame(pin.Frame(f"kp_{name}", parent.parentJoint, fid,
                                    parent.placement * pin.SE3(np.eye(3), np.array(offset)), pin.FrameType.OP_FRAME))
        locked = [full.getJointId(j) for j in self.config.locked]
        model = pin.buildReducedModel(full, locked, pin.neutral(full)) if locked else full
        vel = np.full(model.nv, ROOT_SPEED_LIMIT)
        for j, v in zip(self.config.joints, self.velocity_limits, strict=True):
            vel[model.joints[model.getJointId(j)].idx_v] = v
        model.velocityLimit = vel
        assert tuple(model.names[2:]) == self.config.joints, "pinocchio joint order differs from the MJCF"
        return model

    def pin_q(self, root_pos: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
        return np.concatenate([root_pos, quat_wxyz_to_xyzw(root_quat_wxyz), joint_pos])

    def from_pin_q(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pinocchio q (..., nq) -> (root_pos, root_quat_wxyz, joint_pos)."""
        return q[..., :3], quat_xyzw_to_wxyz(q[..., 3:7]), q[..., 7:]

    @cached_property
    def total_mass(self) -> float:
        return float(self.mj.body_mass[1:].sum())

    def com(self, qpos: np.ndarray) -> np.ndarray:
        """Whole-body centre of mass (T, 3) [m] from the MJCF link masses."""
        out = np.empty((len(qpos), 3))
        for i, q in enumerate(qpos):
            self.forward(q)
            mujoco.mj_comPos(self.mj, self.mj_data)
            out[i] = self.mj_data.subtree_com[1]
        return out

