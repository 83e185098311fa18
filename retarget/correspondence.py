"""Which human joint drives which robot keypoint, and how hard: named data per skeleton."""

from __future__ import annotations

from dataclasses import dataclass

from robomirror.errors import ConfigError

# robot keypoint (retarget.g1.KEYPOINT_FRAMES) -> human joint name, per source skeleton
SMPL_FAMILY = {
    "pelvis": "pelvis", "left_hip": "left_hip", "right_hip": "right_hip", "left_knee": "left_knee",
    "right_knee": "right_knee", "left_ankle": "left_ankle", "right_ankle": "right_ankle",
    "left_toe": "left_foot", "right_toe": "right_foot", "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder", "left_elbow": "left_elbow", "right_elbow": "right_elbow",
    "left_wrist": "left_wrist", "right_wrist": "right_wrist", "head": "head",
}
XSENS = {
    "pelvis": "Pelvis", "left_hip": "L_UpperLeg", "right_hip": "R_UpperLeg", "left_knee": "L_LowerLeg",
    "right_knee": "R_LowerLeg", "left_ankle": "L_Foot", "right_ankle": "R_Foot", "left_toe": "L_Toe",
    "right_toe": "R_Toe", "left_shoulder": "L_UpperArm", "right_shoulder": "R_UpperArm",
    "left_elbow": "L_Forearm", "right_elbow": "R_Forearm", "left_wrist": "L_Hand", "right_wrist": "R_Hand",
    "head": "Head",
}
# BVH-style mocap naming (LAFAN1, holosoma's climbing mocap): Hips, LeftUpLeg, LeftLeg, ...
MOCAP_BVH = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "left_knee": "LeftLeg",
    "right_knee": "RightLeg", "left_ankle": "LeftFoot", "right_ankle": "RightFoot", "left_toe": "LeftToeBase",
    "right_toe": "RightToeBase", "left_shoulder": "LeftArm", "right_shoulder": "RightArm",
    "left_elbow": "LeftForeArm", "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
    "head": "Head",
}
# The G1's own keypoints (robot -> robot round trips, and robot-motion datasets used as "human").
G1_KEYPOINTS = {k: f"g1:{k}" for k in SMPL_FAMILY}
TABLES = {"smpl_family": SMPL_FAMILY, "xsens": XSENS, "mocap_bvh": MOCAP_BVH, "g1": G1_KEYPOINTS}

# The keypoint tree used by the shape fit: child -> parent. Each segment's pose-invariant length is
# matched to the robot's, so targets have the robot's proportions and the human's pose.
KEYPOINT_PARENT = {
    "left_hip": "pelvis", "right_hip": "pelvis", "left_knee": "left_hip", "right_knee": "right_hip",
    "left_ankle": "left_knee", "right_ankle": "right_knee", "left_toe": "left_ankle", "right_toe": "right_ankle",
    "left_shoulder": "pelvis", "right_shoulder": "pelvis", "head": "pelvis",
    "left_elbow": "left_shoulder", "right_elbow": "right_shoulder", "left_wrist": "left_elbow",
    "right_wrist": "right_elbow", "left_hand": "left_wrist", "right_hand": "right_wrist",
}
# Hands are used when the skeleton has a joint past the wrist (first candidate found wins).
HAND_CANDIDATES = {
    "left_hand": ("left_middle1", "left_hand", "LeftHandMiddle1", "g1:left_hand"),
    "right_hand": ("right_middle1", "right_hand", "RightHandMiddle1", "g1:right_hand"),
}
LEG_SEGMENTS = (("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_hip", "right_knee"),
                ("right_knee", "right_ankle"))


@dataclass(frozen=True)
class TaskSpec:
    """One IK task: a frame task when orientation_cost > 0, else a position task."""

    keypoint: str
    position_cost: float  # [1/m]
    orientation_cost: float = 0.0  # [1/rad]


TASKS = (
    TaskSpec("pelvis", 1.0, 0.5),
    # feet: a soft orientation (the G1's ankle range is small: a hard one moved the knee 20-30 cm on real
    # mocap), a knee that weighs as much as the foot (DeepMimic clips: median worst error 17 -> 11 cm), and
    # an ankle position held 3x harder so swing feet keep their height (clips skating more than their
    # source: 5 -> 1 of 15, errors unchanged; make bench)
    TaskSpec("left_ankle", 3.0, 0.1), TaskSpec("right_ankle", 3.0, 0.1),
    TaskSpec("left_toe", 0.3), TaskSpec("right_toe", 0.3),
    TaskSpec("left_knee", 1.0), TaskSpec("right_knee", 1.0),
    TaskSpec("left_elbow", 0.4), TaskSpec("right_elbow", 0.4),
    TaskSpec("left_wrist", 0.6), TaskSpec("right_wrist", 0.6),
    TaskSpec("left_hip", 0.3), TaskSpec("right_hip", 0.3),
    TaskSpec("left_shoulder", 0.4), TaskSpec("right_shoulder", 0.4),
    TaskSpec("head", 0.3),
    TaskSpec("left_hand", 0.3), TaskSpec("right_hand", 0.3),  # only when the skeleton has hands
)


def table_for(joint_names: tuple[str, ...] | list[str]) -> tuple[str, dict[str, str]]:
    """The correspondence table that fits a skeleton, by its joint names (plus its hands if any)."""
    names = set(joint_names)
    for name, table in TABLES.items():
        if set(table.values()) <= names:
            hands = {kp: next(c for c in cands if c in names) for kp, cands in HAND_CANDIDATES.items()
                     if any(c in names for c in cands)}
            return name, {**table, **hands}
    raise ConfigError(f"no keypoint table fits joints {sorted(names)[:8]}...; known skeletons: {sorted(TABLES)}")
