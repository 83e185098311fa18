"""The G1 as the policy sees it: 23 actuated joints, the six wrists held with PD at 0, BeyondMimic/mjlab PD gains.

Two actuation setups share one contract and one model builder (`retarget.g1.actuated_g1_model`,
which the deploy sim backend builds too):
- `train` (the training simulator): MuJoCo position actuators (kp, kd inside the implicitfast
  integrator), physics dt 0.005 s, decimation 4 -> 50 Hz.
- `sim2sim` (the cross-simulator stand-in, the deploy sim's model): torque motors, PD computed
  outside the actuator model every physics step and clipped to the effort limit, physics dt
  0.002 s, decimation 10 -> 50 Hz, as the robot's low level and the public sim2sim scripts do.
The wrists are held as on the robot: PD towards `LOCKED_JOINT_POS_RAD` with their own gains
(`LOCKED_KP`, `LOCKED_KD`), never welded. Actuators: the 23 policy joints first, then the wrists.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from retarget.g1 import ACTUATED_JOINTS, FOOT_COLLISION_GEOMS, actuated_g1_model
from robomirror import g1_contract as g1
from robomirror.errors import ConfigError


@dataclass(frozen=True)
class SimConfig:
    name: str = "train"
    physics_dt_s: float = 0.005
    decimation: int = 4
    explicit_pd: bool = False  # PD outside the actuator model (sim2sim)

    def __post_init__(self) -> None:
        if abs(self.physics_dt_s * self.decimation - 1.0 / g1.POLICY_HZ) > 1e-9:
            raise ConfigError(f"simulator {self.name!r}: physics_dt_s * decimation must be the policy period "
                              f"{1 / g1.POLICY_HZ} s, got {self.physics_dt_s} * {self.decimation}")


SIMS = {"train": SimConfig(), "sim2sim": SimConfig("sim2sim", 0.002, 10, explicit_pd=True)}

FOOT_GEOMS = FOOT_COLLISION_GEOMS
# actuator index of each motor (G1_29DOF_JOINTS order): d.ctrl[MOTOR_TO_ACTUATOR] = motor-order values
MOTOR_TO_ACTUATOR = np.array([ACTUATED_JOINTS.index(j) for j in g1.G1_29DOF_JOINTS])


def build_model(sim: SimConfig, robot_xml: str | None = None, scenes: tuple = ()) -> mujoco.MjModel:
    """The G1 in `sim`'s setup; with `scenes` (robot-scale `ingest.scene.Scene`s) one height-field geom per
    scene, each colliding in no world until `train/env/scene.py` enables it; none: the deploy sim's model."""
    if not scenes:
        return actuated_g1_model(sim.physics_dt_s, sim.explicit_pd, robot_xml)
    from train.env.scene import add_scene_geoms, disable_scene_geoms

    return disable_scene_geoms(actuated_g1_model(sim.physics_dt_s, sim.explicit_pd, robot_xml,
                                                 lambda spec: add_scene_geoms(spec, scenes)))


@dataclass(frozen=True)
class ModelIndex:
    """Addresses into a built model, looked up by name once."""

    qpos_adr: np.ndarray  # (23,) policy joints
    dof_adr: np.ndarray
    motor_qpos_adr: np.ndarray  # (29,) every motor, G1_29DOF_JOINTS order (wrists included)
    motor_dof_adr: np.ndarray
    keypoint_body: np.ndarray  # (27,)
    keypoint_offset: np.ndarray  # (27, 3)
    mass_body: np.ndarray  # (22,)
    foot_geoms: tuple[frozenset, frozenset]
    floor_geom: int
    ankle_dof: np.ndarray  # the four ankle dofs (inertia randomization)
    joint_range: np.ndarray  # (23, 2)
    foot_body: np.ndarray  # (2,) left, right ankle-roll links (the feet)

    @classmethod
    def of(cls, m: mujoco.MjModel) -> "ModelIndex":
        def jid(j: str) -> int:
            i = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j)
            if i < 0:
                raise ConfigError(f"joint {j!r} is not in the G1 model; expected the Menagerie G1 joint names")
            return i
        joints = [jid(j) for j in g1.POLICY_JOINTS]
        motors = [jid(j) for j in g1.G1_29DOF_JOINTS]
        acts = tuple(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in range(m.nu))
        if acts != ACTUATED_JOINTS:
            raise ConfigError(f"the model's actuators {acts[:2]}... ({m.nu}) are not the policy joints then the "
                              f"wrists {ACTUATED_JOINTS[:2]}... ({len(ACTUATED_JOINTS)}); build it with build_model")
        body = lambda b: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b)  # noqa: E731
        geoms = tuple(frozenset(mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, g) for g in FOOT_GEOMS[s])
                      for s in ("left", "right"))
        return cls(m.jnt_qposadr[joints].copy(), m.jnt_dofadr[joints].copy(),
                   m.jnt_qposadr[motors].copy(), m.jnt_dofadr[motors].copy(),
                   np.array([body(b) for b, _ in g1.KEYPOINT_BODIES]),
                   np.array([o for _, o in g1.KEYPOINT_BODIES], dtype=np.float64),
                   np.array([body(b) for b in g1.MASS_BODIES]), geoms,  # type: ignore[arg-type]
                   mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor"),
                   m.jnt_dofadr[[jid(j) for j in g1.POLICY_JOINTS if "ankle" in j]].copy(),
                   m.jnt_range[joints].copy(),
                   np.array([body("left_ankle_roll_link"), body("right_ankle_roll_link")]))


def keypoints_w(ix: "ModelIndex", data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
    """World positions (27, 3) and orientations (27, 4) wxyz of the contract's keypoints, after kinematics."""
    rot = data.xmat[ix.keypoint_body].reshape(-1, 3, 3)
    return data.xpos[ix.keypoint_body] + np.einsum("kij,kj->ki", rot, ix.keypoint_offset), data.xquat[ix.keypoint_body]


def pd_torque(target: np.ndarray, q: np.ndarray, qd: np.ndarray, kp: np.ndarray, kd: np.ndarray) -> np.ndarray:
    """Explicit PD of the 29 motors (motor order) clipped to their effort limits [N m], written as the
    deploy sim's low level writes it (kp (q* - q) + kd (0 - dq)), so both give the same bits."""
    return np.clip(kp * (target - q) + kd * (0.0 - qd), -g1.MOTOR_EFFORT_LIMIT_NM, g1.MOTOR_EFFORT_LIMIT_NM)
