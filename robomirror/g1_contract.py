"""The G1 contract shared by the policy environment (train/env) and the robot runtime (deploy/).

numpy only: the runtime imports this on a Jetson without the training stack. Everything a policy
needs to act on a G1 is here, named: joint orders (MuJoCo depth-first, Isaac breadth-first, Unitree
motor index), default pose, PD gains, effort limits, action scale and the observation layout of the
paper's Tables 6-7.

Gains follow BeyondMimic / mjlab (`asset_zoo/robots/unitree_g1/g1_constants.py`): every motor's
reflected inertia (armature) from its two-stage planetary gearbox, stiffness kp = armature * w^2 and
damping kd = 2 * zeta * armature * w with w = 2 pi 10 Hz and zeta = 2; action scale
0.25 * effort_limit / kp. Waist roll/pitch and ankles are two 5020 motors in a linkage (2x each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------------------------ joints
# MuJoCo / pinocchio joint order of the 29-DoF Menagerie G1 (depth-first, as in the MJCF). This is
# also Unitree's motor index order on the G1 (LowCmd motor_cmd[0..28]).
G1_29DOF_JOINTS = (
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint", "left_knee_joint",
    "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint", "right_knee_joint",
    "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint",
    "left_wrist_roll_joint", "left_wrist_pitch_joint", "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint",
    "right_wrist_roll_joint", "right_wrist_pitch_joint", "right_wrist_yaw_joint",
)
WRIST_JOINTS = tuple(j for j in G1_29DOF_JOINTS if "wrist" in j)
# PHC/PBHC "g1_29dof_anneal_23dof": legs 12, waist 3, per arm shoulder p/r/y + elbow; wrists locked.
G1_23DOF_JOINTS = tuple(j for j in G1_29DOF_JOINTS if j not in WRIST_JOINTS)
POLICY_JOINTS = G1_23DOF_JOINTS  # the policy's action and observation order (MuJoCo depth-first)
N_ACT = len(POLICY_JOINTS)

# Kinematic parent of each joint (the joint that moves its parent body; None = the pelvis).
JOINT_PARENT: dict[str, str | None] = {}
for _chain in (G1_29DOF_JOINTS[0:6], G1_29DOF_JOINTS[6:12], G1_29DOF_JOINTS[12:15]):
    for _i, _j in enumerate(_chain):
        JOINT_PARENT[_j] = _chain[_i - 1] if _i else None
for _chain in (G1_29DOF_JOINTS[15:22], G1_29DOF_JOINTS[22:29]):
    for _i, _j in enumerate(_chain):
        JOINT_PARENT[_j] = _chain[_i - 1] if _i else "waist_pitch_joint"


def breadth_first(joints: tuple[str, ...]) -> tuple[str, ...]:
    """Isaac Gym / Isaac Lab order: joints by depth in the tree, ties in MuJoCo (depth-first) order."""
    def depth(j: str) -> int:
        d = 0
        while JOINT_PARENT[j] is not None:
            j, d = JOINT_PARENT[j], d + 1
        return d
    return tuple(sorted(joints, key=lambda j: (depth(j), G1_29DOF_JOINTS.index(j))))


ISAAC_POLICY_JOINTS = breadth_first(POLICY_JOINTS)
# x_isaac = x_mujoco[MUJOCO_TO_ISAAC]; x_mujoco = x_isaac[ISAAC_TO_MUJOCO]
MUJOCO_TO_ISAAC = np.array([POLICY_JOINTS.index(j) for j in ISAAC_POLICY_JOINTS])
ISAAC_TO_MUJOCO = np.argsort(MUJOCO_TO_ISAAC)

# Unitree hg LowCmd: 35 motor slots; the G1 29-DoF uses 0..28 in G1_29DOF_JOINTS order.
N_MOTOR_SLOTS = 35
POLICY_TO_MOTOR = np.array([G1_29DOF_JOINTS.index(j) for j in POLICY_JOINTS])
LOCKED_TO_MOTOR = np.array([G1_29DOF_JOINTS.index(j) for j in WRIST_JOINTS])

# --------------------------------------------------------------------------------------- actuators
NATURAL_FREQ_RAD_S = 10 * 2.0 * math.pi
DAMPING_RATIO = 2.0


def _reflected_inertia(rotor: tuple[float, float, float], gears: tuple[float, float, float]) -> float:
    """Two-stage planetary gearbox: each stage's rotor inertia seen through the gears after it."""
    return rotor[0] * (gears[1] * gears[2]) ** 2 + rotor[1] * gears[2] ** 2 + rotor[2]


# motor class -> (armature [kg m^2], velocity limit [rad/s], effort limit [N m]); Unitree's figures
ARMATURE_KG_M2 = {
    "5020": _reflected_inertia((0.139e-4, 0.017e-4, 0.169e-4), (1, 1 + 46 / 18, 1 + 56 / 16)),
    "7520_14": _reflected_inertia((0.489e-4, 0.098e-4, 0.533e-4), (1, 4.5, 1 + 48 / 22)),
    "7520_22": _reflected_inertia((0.489e-4, 0.109e-4, 0.738e-4), (1, 4.5, 5)),
    "4010": _reflected_inertia((0.068e-4, 0.0, 0.0), (1, 5, 5)),
}
MOTOR_LIMITS = {"7520_14": (32.0, 88.0), "7520_22": (20.0, 139.0), "5020": (37.0, 25.0), "4010": (22.0, 5.0)}


def motor_of(joint: str) -> tuple[str, int]:
    """(motor class, how many of them drive the joint)."""
    if any(k in joint for k in ("hip_pitch", "hip_yaw", "waist_yaw")):
        return "7520_14", 1
    if any(k in joint for k in ("hip_roll", "knee")):
        return "7520_22", 1
    if any(k in joint for k in ("waist_roll", "waist_pitch", "ankle")):
        return "5020", 2
    if any(k in joint for k in ("wrist_pitch", "wrist_yaw")):
        return "4010", 1
    return "5020", 1  # shoulders, elbows, wrist roll


def armature_kg_m2(joint: str) -> float:
    motor, n = motor_of(joint)
    return n * ARMATURE_KG_M2[motor]


def effort_limit_nm(joint: str) -> float:
    motor, n = motor_of(joint)
    return n * MOTOR_LIMITS[motor][1]


def velocity_limit_rad_s(joint: str) -> float:
    return MOTOR_LIMITS[motor_of(joint)[0]][0]


def kp_nm_rad(joint: str) -> float:
    return armature_kg_m2(joint) * NATURAL_FREQ_RAD_S ** 2


def kd_nm_s_rad(joint: str) -> float:
    return 2.0 * DAMPING_RATIO * armature_kg_m2(joint) * NATURAL_FREQ_RAD_S


def _per(joints: tuple[str, ...], f) -> np.ndarray:
    return np.array([f(j) for j in joints], dtype=np.float64)


KP = _per(POLICY_JOINTS, kp_nm_rad)
KD = _per(POLICY_JOINTS, kd_nm_s_rad)
EFFORT_LIMIT_NM = _per(POLICY_JOINTS, effort_limit_nm)
VELOCITY_LIMIT_RAD_S = _per(POLICY_JOINTS, velocity_limit_rad_s)
ARMATURE = _per(POLICY_JOINTS, armature_kg_m2)
ACTION_SCALE = 0.25 * EFFORT_LIMIT_NM / KP  # [rad per unit action]
LOCKED_KP = _per(WRIST_JOINTS, kp_nm_rad)
LOCKED_KD = _per(WRIST_JOINTS, kd_nm_s_rad)

# Default pose: mjlab's KNEES_BENT_KEYFRAME (the BeyondMimic G1 standing pose). Wrists at 0.
_DEFAULT = {"hip_pitch": -0.312, "knee": 0.669, "ankle_pitch": -0.363, "elbow": 0.6, "shoulder_pitch": 0.2}
DEFAULT_ROOT_HEIGHT_M = 0.76


def _default(j: str) -> float:
    if j == "left_shoulder_roll_joint":
        return 0.2
    if j == "right_shoulder_roll_joint":
        return -0.2
    return next((v for k, v in _DEFAULT.items() if f"_{k}_joint" in j), 0.0)


DEFAULT_JOINT_POS_RAD = _per(POLICY_JOINTS, _default)
LOCKED_JOINT_POS_RAD = np.zeros(len(WRIST_JOINTS))


# Joint position limits [rad] of the policy joints, from the Menagerie G1 MJCF (a test checks them
# against the model); the runtime clamps targets to their soft range without loading the MJCF.
_RANGE = {"hip_pitch": (-2.5307, 2.8798), "left_hip_roll": (-0.5236, 2.9671), "right_hip_roll": (-2.9671, 0.5236),
          "hip_yaw": (-2.7576, 2.7576), "knee": (-0.087267, 2.8798), "ankle_pitch": (-0.87267, 0.5236),
          "ankle_roll": (-0.2618, 0.2618), "waist_yaw": (-2.618, 2.618), "waist_roll": (-0.52, 0.52),
          "waist_pitch": (-0.52, 0.52), "shoulder_pitch": (-3.0892, 2.6704),
          "left_shoulder_roll": (-1.5882, 2.2515), "right_shoulder_roll": (-2.2515, 1.5882),
          "shoulder_yaw": (-2.618, 2.618), "elbow": (-1.0472, 2.0944), "wrist_roll": (-1.972222054, 1.972222054),
          "wrist_pitch": (-1.614429558, 1.614429558), "wrist_yaw": (-1.614429558, 1.614429558)}


def _range(j: str) -> tuple[float, float]:
    name = j.replace("_joint", "")
    if name in _RANGE:
        return _RANGE[name]
    return next(v for k, v in _RANGE.items() if name.endswith(k) and not k.startswith(("left", "right")))


JOINT_RANGE_RAD = np.array([_range(j) for j in POLICY_JOINTS])  # (23, 2)


def soft_range(alpha: float = 0.95, joint_range_rad: np.ndarray = JOINT_RANGE_RAD) -> tuple[np.ndarray, np.ndarray]:
    """The hard range shrunk about its midpoint by alpha (the paper's eqs. 3-6)."""
    mid, half = joint_range_rad.mean(1), 0.5 * (joint_range_rad[:, 1] - joint_range_rad[:, 0]) * alpha
    return mid - half, mid + half


# ------------------------------------------------------------------------------ the 29 motors
# What goes on the wire, in Unitree's motor order (G1_29DOF_JOINTS): the 23 policy joints and the
# six wrists, which no policy drives and which are held with PD at LOCKED_JOINT_POS_RAD (on the
# robot, in the deploy sim and in the policy env alike).
MOTOR_RANGE_RAD = np.array([_range(j) for j in G1_29DOF_JOINTS])  # (29, 2), the Menagerie MJCF's
MOTOR_EFFORT_LIMIT_NM = _per(G1_29DOF_JOINTS, effort_limit_nm)
MOTOR_VELOCITY_LIMIT_RAD_S = _per(G1_29DOF_JOINTS, velocity_limit_rad_s)
MOTOR_ARMATURE = _per(G1_29DOF_JOINTS, armature_kg_m2)
MOTOR_DEFAULT_POS_RAD = np.zeros(len(G1_29DOF_JOINTS))
MOTOR_DEFAULT_POS_RAD[POLICY_TO_MOTOR], MOTOR_DEFAULT_POS_RAD[LOCKED_TO_MOTOR] = DEFAULT_JOINT_POS_RAD, LOCKED_JOINT_POS_RAD


def motor_vector(policy_values: np.ndarray, locked_values: np.ndarray) -> np.ndarray:
    """(..., 23) policy-order values and (6,) wrist values -> (..., 29) in motor order."""
    policy_values = np.asarray(policy_values, dtype=np.float64)
    out = np.empty(policy_values.shape[:-1] + (len(G1_29DOF_JOINTS),))
    out[..., POLICY_TO_MOTOR], out[..., LOCKED_TO_MOTOR] = policy_values, locked_values
    return out


# The gains a policy may put on the wire: kp = armature w^2 and kd = 2 zeta armature w per motor, with
# w up to MAX_NATURAL_FREQ_HZ and zeta up to MAX_DAMPING_RATIO (mjlab's design: 10 Hz, zeta 2; Unitree's
# own G1 examples stay below 16 Hz). Anything outside is refused at load, never sent.
MAX_NATURAL_FREQ_HZ = 20.0
MAX_DAMPING_RATIO = 5.0


def gain_bounds(armature_kg_m2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kp_max [N m/rad], kd_max [N m s/rad]) per joint; both gains must also be >= 0 (kp > 0)."""
    w = 2.0 * math.pi * MAX_NATURAL_FREQ_HZ
    return armature_kg_m2 * w * w, 2.0 * MAX_DAMPING_RATIO * armature_kg_m2 * w


def target_from_action(action: np.ndarray) -> np.ndarray:
    """Joint position target [rad] of a policy action (policy order, any leading shape)."""
    return DEFAULT_JOINT_POS_RAD + ACTION_SCALE * action


def action_from_target(target_rad: np.ndarray) -> np.ndarray:
    return (target_rad - DEFAULT_JOINT_POS_RAD) / ACTION_SCALE


# ------------------------------------------------------------------------------------- keypoints
# The 27 bodies whose positions make the 81-d reference keypoints (Table 6/7): the pelvis, the child
# link of each policy joint (waist_pitch moves the torso), the head and both hands. (body, offset m)
KEYPOINT_BODIES: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("pelvis", (0.0, 0.0, 0.0)),
    *((("torso_link" if j == "waist_pitch_joint" else j.replace("_joint", "_link")), (0.0, 0.0, 0.0))
      for j in POLICY_JOINTS),
    ("torso_link", (0.0, 0.0, 0.43)),  # head
    ("left_wrist_yaw_link", (0.08, 0.0, 0.0)),  # hands: the locked wrists' last link
    ("right_wrist_yaw_link", (0.08, 0.0, 0.0)),
)
KEYPOINT_NAMES = ("pelvis", *(j.replace("_joint", "") for j in POLICY_JOINTS), "head", "left_hand", "right_hand")
N_KEYPOINTS = len(KEYPOINT_BODIES)
FEET_KEYPOINTS = (KEYPOINT_NAMES.index("left_ankle_roll"), KEYPOINT_NAMES.index("right_ankle_roll"))
VR_KEYPOINTS = (KEYPOINT_NAMES.index("head"), KEYPOINT_NAMES.index("left_hand"), KEYPOINT_NAMES.index("right_hand"))
# Link masses randomized and seen by the critic (22): the pelvis and every policy joint's link but
# the two small waist links (0.21 and 0.09 kg).
MASS_BODIES = tuple(b for b, _ in KEYPOINT_BODIES[: 1 + N_ACT] if b not in ("waist_yaw_link", "waist_roll_link"))

# ------------------------------------------------------------------------------ observation layout
POLICY_HZ = 50.0
PROPRIO_TERMS = (("dof_pos_rel_rad", N_ACT), ("dof_vel_rad_s", N_ACT), ("last_action", N_ACT),
                 ("root_ang_vel_b_rad_s", 3), ("projected_gravity_b", 3))
PROPRIO_DIM = sum(n for _, n in PROPRIO_TERMS)  # 75


@dataclass(frozen=True)
class ObsLayout:
    """Named slices of one flat observation vector; frames are newest first."""

    terms: tuple[tuple[str, int], ...]

    @property
    def dim(self) -> int:
        return sum(n for _, n in self.terms)

    def slices(self) -> dict[str, slice]:
        out, at = {}, 0
        for name, n in self.terms:
            out[name] = slice(at, at + n)
            at += n
        return out

    def as_json(self) -> list[list]:
        return [[name, n] for name, n in self.terms]


def proprio_history(frames: int, prefix: str = "proprio") -> tuple[tuple[str, int], ...]:
    return tuple((f"{prefix}_t-{k}", PROPRIO_DIM) for k in range(frames))


# The terrain around the robot (issue 22), VideoMimic-style (arXiv 2505.03729: a policy conditioned on a
# local height map of the environment): an optional slice, off by default, appended last to the teacher's
# and the student's layouts when on, so every other slice keeps its place. A level grid of
# HEIGHT_MAP_N x HEIGHT_MAP_N points HEIGHT_MAP_CELL_M apart centred on the root (pelvis body origin), in
# the root's heading frame (yawed with the root, never pitched or rolled): entry [i, j] (row-major) lies at
# x = (i - N // 2) * cell forward, y = (j - N // 2) * cell left, so row 0 is behind the root and column 0
# on its right. Each value is the surface height under the point minus the root's height [m] (relative to
# the root, not to the ground under it: a standing G1 on a flat floor reads about -0.76 everywhere, a step
# in front reads higher). The grid and reference are our choice, not read from VideoMimic's code; the
# store's per-frame height_map.npz (retarget.scene_ground.local_height_map) is the same grid.
HEIGHT_MAP_N = 11
HEIGHT_MAP_CELL_M = 0.1
HEIGHT_MAP_TERM = "height_map_rel_root_m"
HEIGHT_MAP_DIM = HEIGHT_MAP_N * HEIGHT_MAP_N  # 121


def height_map_terms(height_map: bool) -> tuple[tuple[str, int], ...]:
    return ((HEIGHT_MAP_TERM, HEIGHT_MAP_DIM),) if height_map else ()


def has_height_map(layout: "ObsLayout | list") -> bool:
    """Whether a layout (an ObsLayout or its JSON, as a policy's metadata holds it) asks for the terrain."""
    terms = layout.terms if isinstance(layout, ObsLayout) else layout
    return any(isinstance(t, (list, tuple)) and len(t) == 2 and t[0] == HEIGHT_MAP_TERM for t in terms)


TEACHER_HISTORY = 4  # + the current frame (Table 6: 75 x (1 + 4))
STUDENT_HISTORY = 25  # Table 7: 75 x (25 + 1)


def teacher_obs(height_map: bool = False) -> ObsLayout:
    """Table 6's 489, then the height map (121) when asked for."""
    return ObsLayout(proprio_history(1 + TEACHER_HISTORY) + (
        ("ref_dof_pos_rad", N_ACT), ("ref_keypoints_b_m", 3 * N_KEYPOINTS), ("ref_root_lin_vel_b_m_s", 3),
        ("ref_root_ang_vel_b_rad_s", 3), ("ref_root_rotvec_b_rad", 3), ("ref_root_height_m", 1))
        + height_map_terms(height_map))


TEACHER_OBS = teacher_obs()
# 489: Table 7's rows sum to 488 while its total says 489; the 489th entry is the reference root
# height above the floor, which a tracker needs for kneeling and getting up and the rows leave out.
PRIVILEGED_OBS = ObsLayout(tuple((f"root_lin_vel_b_m_s_t-{k}", 3) for k in range(1 + TEACHER_HISTORY)) + (
    ("ref_keypoints_w_rel_m", 3 * N_KEYPOINTS), ("keypoint_diff_b_m", 3 * N_KEYPOINTS), ("com_offset_m", 3),
    ("link_mass_scale", len(MASS_BODIES)), ("kp_scale", N_ACT), ("kd_scale", N_ACT), ("friction", 1),
    ("control_delay_s", 1)))  # 250


def projected_gravity_b(root_quat_wxyz: np.ndarray) -> np.ndarray:
    """The world's down axis in the root (IMU) frame, (..., 3), from wxyz quaternions."""
    q = np.asarray(root_quat_wxyz, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    # R^T (0, 0, -1) = -(third row of R)
    return -np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)


def proprio_frame(joint_pos: np.ndarray, joint_vel: np.ndarray, last_action: np.ndarray, ang_vel_b: np.ndarray,
                  root_quat_wxyz: np.ndarray) -> np.ndarray:
    """One proprioception frame (..., 75): DoF pos (rel. default), DoF vel, last action, IMU angular
    velocity (body frame), projected gravity. Policy joint order."""
    return np.concatenate([joint_pos - DEFAULT_JOINT_POS_RAD, joint_vel, last_action, ang_vel_b,
                           projected_gravity_b(root_quat_wxyz)], -1)


class ProprioHistory:
    """The last `frames` proprioception frames per env, newest first; a reset fills every frame with the
    first observation (no zeros a real robot never produces)."""

    def __init__(self, n_envs: int, frames: int, dim: int = PROPRIO_DIM) -> None:
        self.buf = np.zeros((n_envs, frames, dim))

    def push(self, x: np.ndarray) -> None:
        self.buf[:, 1:] = self.buf[:, :-1]
        self.buf[:, 0] = x

    def fill(self, ids, x: np.ndarray) -> None:
        self.buf[ids] = x[:, None, :]

    def flat(self, frames: int | None = None) -> np.ndarray:
        b = self.buf if frames is None else self.buf[:, :frames]
        return b.reshape(len(b), -1)


def student_observation(latent: np.ndarray, history: ProprioHistory) -> np.ndarray:
    """(N, 256 + 75 x 26) in STUDENT_OBS order."""
    return np.concatenate([np.atleast_2d(latent), history.flat(1 + STUDENT_HISTORY)], -1)


def student_obs(latent_dim: int = 256, height_map: bool = False) -> ObsLayout:
    """Table 7's 2206 (latent 256), then the height map (121) when asked for."""
    return ObsLayout((("motion_latent", latent_dim),) + proprio_history(1 + STUDENT_HISTORY)
                     + height_map_terms(height_map))


STUDENT_OBS = student_obs()
