"""Skeleton definitions (joint names and kinematic trees) of the human sources.

SMPL-X and SMPL share their first 22 body joints; SMPL adds two hand joints, SMPL-X adds jaw,
eyes and 30 finger joints. XSens MVN has 23 segments (Nymeria `body/xdata.npz`). SOMA (BONES-SEED's
BVH) has 77 joints under a `Root` joint; its body joints map onto SMPL's 22.
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

# SOMA, NVIDIA's body model, as BONES-SEED's soma_uniform / soma_proportional BVH declare it: 77 joints
# below a `Root` joint, y-up, centimetres, 120 fps (Frame Time 0.008333). The 30 body joints and their
# parents as the public SOMA tooling lists them (a Unity SOMA-30 retargeter, NVlabs' BVH -> SMPL-22
# converter for BONES-SEED); the other 47 are fingers (LeftHandIndex1..., LeftHandMiddle1...) and tips.
SOMA_BODY_30 = (
    "Hips", "Spine1", "Spine2", "Chest", "Neck1", "Neck2", "Head", "Jaw", "LeftEye", "RightEye",
    "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftHandThumbEnd", "LeftHandMiddleEnd",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandThumbEnd", "RightHandMiddleEnd",
    "LeftLeg", "LeftShin", "LeftFoot", "LeftToeBase", "RightLeg", "RightShin", "RightFoot", "RightToeBase",
)
SOMA_BODY_30_PARENTS = (-1, 0, 1, 2, 3, 4, 5, 6, 6, 6, 3, 10, 11, 12, 13, 13, 3, 16, 17, 18, 19, 19,
                        0, 22, 23, 24, 0, 26, 27, 28)
SOMA_ROOT = "Root"  # the joint above Hips; the loaders take the root motion from Hips' channels
# SOMA joint -> the SMPL joint at the same place (NVlabs' converter's SMPL-22 list). Unlike the mocap-BVH
# naming (LAFAN1: LeftUpLeg = hip, LeftLeg = knee), SOMA's LeftLeg is the thigh (hip joint) and LeftShin
# the knee; LeftShoulder is the collar and LeftArm the shoulder joint. Neck2 has no SMPL joint.
SMPL_FROM_SOMA = {
    "Hips": "pelvis", "LeftLeg": "left_hip", "RightLeg": "right_hip", "Spine1": "spine1",
    "LeftShin": "left_knee", "RightShin": "right_knee", "Spine2": "spine2", "LeftFoot": "left_ankle",
    "RightFoot": "right_ankle", "Chest": "spine3", "LeftToeBase": "left_foot", "RightToeBase": "right_foot",
    "Neck1": "neck", "LeftShoulder": "left_collar", "RightShoulder": "right_collar", "Head": "head",
    "LeftArm": "left_shoulder", "RightArm": "right_shoulder", "LeftForeArm": "left_elbow",
    "RightForeArm": "right_elbow", "LeftHand": "left_wrist", "RightHand": "right_wrist",
}
# past the wrist, where the file has them (the hand keypoints of retarget/correspondence.py)
SMPLX_HANDS_FROM_SOMA = {"LeftHandMiddle1": "left_middle1", "RightHandMiddle1": "right_middle1"}

assert len(SOMA_BODY_30) == len(SOMA_BODY_30_PARENTS) == 30
assert set(SMPL_FROM_SOMA) <= set(SOMA_BODY_30) and set(SMPL_FROM_SOMA.values()) == set(SMPL_BODY_22)
assert len(SMPLX_JOINTS) == len(SMPLX_PARENTS) == 55
assert len(SMPL_JOINTS) == len(SMPL_PARENTS) == 24
assert len(XSENS_SEGMENTS) == len(XSENS_PARENTS) == 23
