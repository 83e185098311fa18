"""A synthetic G1 reference (labelled: a knees-bent stand with a slow arm/waist sway) for tests and benches."""

from __future__ import annotations

import numpy as np

from retarget.motion import RobotMotion
from robomirror import g1_contract as g1
from train.env.actuation import SIMS, build_model
from train.env.motion_library import Clip, MotionLibrary


def sway_clip(clip_id: str = "sway", seconds: float = 2.0, amp: float = 0.2, fps: float = 50.0) -> Clip:
    t = np.arange(int(seconds * fps)) / fps
    q = np.tile(g1.DEFAULT_JOINT_POS_RAD, (len(t), 1))
    q[:, g1.POLICY_JOINTS.index("left_shoulder_pitch_joint")] += amp * np.sin(2 * np.pi * 0.5 * t)
    q[:, g1.POLICY_JOINTS.index("waist_yaw_joint")] += 0.5 * amp * np.sin(2 * np.pi * 0.25 * t)
    root = np.tile([0.0, 0.0, g1.DEFAULT_ROOT_HEIGHT_M], (len(t), 1))
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (len(t), 1))
    m = RobotMotion(fps, g1.POLICY_JOINTS, root, quat, q, np.ones((len(t), 2), dtype=bool))
    return Clip(clip_id, m, np.linspace(-1, 1, 256).astype(np.float32), {"latents": "vae", "view": "third_person"})


def library(n: int = 2, seconds: float = 2.0) -> MotionLibrary:
    return MotionLibrary([sway_clip(f"sway{i}", seconds, 0.1 + 0.1 * i) for i in range(n)], build_model(SIMS["train"]))
