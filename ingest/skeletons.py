"""Skeleton definitions (joint names and kinematic trees) of the human sources.

SMPL-X and SMPL share their first 22 body joints; SMPL adds two hand joints, SMPL-X adds jaw,
eyes and 30 finger joints. XSens MVN has 23 segments (Nymeria `body/xdata.npz`).
"""

from __future__ import annotations

SMPL_BODY_22 = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
SMPL_BODY_22_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

SMPL_JOINTS = SMPL_BODY_22 + ("left_hand", "right_hand")
SMPL_PARENTS = SMPL_BODY_22_PARENTS + (20, 21)

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")


def _hand(side: str, wrist: int, first: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    names, parents = [], []
    for f_i, finger in enumerate(_FINGERS):
        for k in range(3):
            names.append(f"{side}_{finger}{k + 1}")
            parents.append(wrist if k == 0 else first + 3 * f_i + k - 1)
    return tuple(names), tuple(parents)


_LEFT_HAND, _LEFT_HAND_PARENTS = _hand("left", 20, 25)
_RIGHT_HAND, _RIGHT_HAND_PARENTS = _hand("right", 21, 40)

SMPLX_JOINTS = SMPL_BODY_22 + ("jaw", "left_eye_smplhf", "right_eye_smplhf") + _LEFT_HAND + _RIGHT_HAND
SMPLX_PARENTS = SMPL_BODY_22_PARENTS + (15, 15, 15) + _LEFT_HAND_PARENTS + _RIGHT_HAND_PARENTS

XSENS_SEGMENTS = (
    "Pelvis", "L5", "L3", "T12", "T8", "Neck", "Head", "R_Shoulder", "R_UpperArm", "R_Forearm",
    "R_Hand", "L_Shoulder", "L_UpperArm", "L_Forearm", "L_Hand", "R_UpperLeg", "R_LowerLeg",
    "R_Foot", "R_Toe", "L_UpperLeg", "L_LowerLeg", "L_Foot", "L_Toe",
)
XSENS_PARENTS = (-1, 0, 1, 2, 3, 4, 5, 4, 7, 8, 9, 4, 11, 12, 13, 0, 15, 16, 17, 0, 19, 20, 21)

# XSens segment -> SMPL joint it sits at (used by the sample generator and retargeting tables).
XSENS_FROM_SMPL = {
    "Pelvis": "pelvis", "L5": "spine1", "L3": "spine2", "T12": "spine2", "T8": "spine3",
    "Neck": "neck", "Head": "head", "R_Shoulder": "right_collar", "R_UpperArm": "right_shoulder",
    "R_Forearm": "right_elbow", "R_Hand": "right_wrist", "L_Shoulder": "left_collar",
    "L_UpperArm": "left_shoulder", "L_Forearm": "left_elbow", "L_Hand": "left_wrist",
    "R_UpperLeg": "right_hip", "R_LowerLeg": "right_knee", "R_Foot": "right_ankle",
    "R_Toe": "right_foot", "L_UpperLeg": "left_hip", "L_LowerLeg": "left_knee",
    "L_Foot": "left_ankle", "L_Toe": "left_foot",
}

assert len(SMPLX_JOINTS) == len(SMPLX_PARENTS) == 55
assert len(SMPL_JOINTS) == len(SMPL_PARENTS) == 24
assert len(XSENS_SEGMENTS) == len(XSENS_PARENTS) == 23
