"""Real human mocap of hard skills, read from DeepMimic's motion files (as pybullet ships them).

pybullet's wheel carries `pybullet_data/data/motions/humanoid3d_*.txt` (DeepMimic's retargeted
CMU/SFU mocap: crawl, roll, cartwheel, get-up face down/up, kicks, backflip, ...) and the humanoid
they drive, `pybullet_data/humanoid/humanoid.urdf`. The format, as pybullet's own
`deep_mimic/env/humanoid_pose_interpolator.py` reads it: JSON `{"Loop", "Frames"}`, each frame
`[duration_s, root_pos (3), root_rot (4, wxyz), chest (4), neck (4), right_hip (4), right_knee (1),
right_ankle (4), right_shoulder (4), right_elbow (1), left_hip (4), left_knee (1), left_ankle (4),
left_shoulder (4), left_elbow (1)]` = 44 numbers; quaternions are local rotations (w first), knees
and elbows one angle about the joint's z axis; the world is y-up. The URDF's offsets are 4x the
motion's metres (pybullet loads it with globalScaling 0.25).

Only the data files are read, from a downloaded wheel; nothing is installed or imported from it.
Output: joint positions (T, J, 3) [m], z-up, with BVH-style names (retarget.correspondence.MOCAP_BVH).
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robomirror.errors import SourceError
from robomirror.rotations import quat_wxyz_to_matrix

PYBULLET_WHEEL = "pybullet==3.2.7"
URDF_MEMBER = "pybullet_data/humanoid/humanoid.urdf"
MOTION_PREFIX = "pybullet_data/data/motions/humanoid3d_"
URDF_SCALE = 0.25  # URDF units -> metres
FRAME_WIDTH = 44
# (joint, parent, kind) in the frame's order after the root; kind: 4 = quaternion, 1 = angle about z
LAYOUT = (("chest", "root", 4), ("neck", "chest", 4), ("right_hip", "root", 4), ("right_knee", "right_hip", 1),
          ("right_ankle", "right_knee", 4), ("right_shoulder", "chest", 4), ("right_elbow", "right_shoulder", 1),
          ("left_hip", "root", 4), ("left_knee", "left_hip", 1), ("left_ankle", "left_knee", 4),
          ("left_shoulder", "chest", 4), ("left_elbow", "left_shoulder", 1))
# fixed points past the last joints, in the parent joint's frame [URDF units]: the wrist (a fixed
# joint), the head centre (the neck link's sphere), the ball of the foot (front third of the foot box,
# on its sole: box centre (0.18, -0.09, 0), size 0.708 x 0.22)
END_POINTS = {"right_wrist": ("right_elbow", (0.0, -1.035788, 0.0)),
              "left_wrist": ("left_elbow", (0.0, -1.035788, 0.0)),
              "head": ("neck", (0.0, 0.7, 0.0)),
              "right_toe": ("right_ankle", (0.416, -0.2, 0.0)), "left_toe": ("left_ankle", (0.416, -0.2, 0.0))}
NAMES = {"root": "Hips", "right_hip": "RightUpLeg", "right_knee": "RightLeg", "right_ankle": "RightFoot",
         "right_toe": "RightToeBase", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot",
         "left_toe": "LeftToeBase", "right_shoulder": "RightArm", "right_elbow": "RightForeArm",
         "right_wrist": "RightHand", "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
         "head": "Head", "chest": "Spine1", "neck": "Neck"}
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +90 deg about x


@dataclass(frozen=True)
class MocapClip:
    name: str
    fps: float
    joint_names: tuple[str, ...]
    joint_pos_w: np.ndarray  # (T, J, 3) [m], z-up


def joint_offsets(urdf_text: str) -> dict[str, np.ndarray]:
    """joint -> offset from its parent joint [m], from the URDF's joint origins."""
    root = ET.fromstring(urdf_text.rstrip("\x00\r\n "))  # the shipped file ends in a NUL byte
    out = {}
    for j in root.iter("joint"):
        origin = j.find("origin")
        out[j.get("name")] = URDF_SCALE * np.array([float(v) for v in origin.get("xyz").split()])
    return out


def motion_to_joints(frames: np.ndarray, offsets: dict[str, np.ndarray], name: str = "") -> dict[str, np.ndarray]:
    """(T, 44) DeepMimic frames -> joint name -> (T, 3) world positions [m], y-up."""
    return forward_kinematics(frames, offsets, name)[0]


def forward_kinematics(frames: np.ndarray, offsets: dict[str, np.ndarray],
                       name: str = "") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(T, 44) DeepMimic frames -> (joint -> (T, 3) world positions [m], joint -> (T, 3, 3) world
    rotations of the joints in LAYOUT and the root), y-up."""
    if frames.ndim != 2 or frames.shape[1] != FRAME_WIDTH:
        raise SourceError("bad_shape", name, f"DeepMimic frames must be (T, {FRAME_WIDTH}), got {frames.shape}")
    if not np.isfinite(frames).all():
        raise SourceError("non_finite", name, "DeepMimic frames hold NaN or inf")
    t = len(frames)
    pos = {"root": frames[:, 1:4]}
    rot = {"root": quat_wxyz_to_matrix(_unit(frames[:, 4:8], name))}
    i = 8
    for joint, parent, kind in LAYOUT:
        pos[joint] = pos[parent] + np.einsum("tij,j->ti", rot[parent], offsets[joint])
        if kind == 4:
            local = quat_wxyz_to_matrix(_unit(frames[:, i:i + 4], name))
        else:
            c, s = np.cos(frames[:, i]), np.sin(frames[:, i])
            local = np.zeros((t, 3, 3))
            local[:, 0, 0], local[:, 0, 1], local[:, 1, 0], local[:, 1, 1], local[:, 2, 2] = c, -s, s, c, 1.0
        rot[joint] = rot[parent] @ local
        i += kind
    for end, (parent, offset) in END_POINTS.items():
        pos[end] = pos[parent] + np.einsum("tij,j->ti", rot[parent], URDF_SCALE * np.array(offset))
    return pos, rot


def _unit(q: np.ndarray, name: str) -> np.ndarray:
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if (n < 0.5).any():
        raise SourceError("bad_body", name, "DeepMimic frames hold a quaternion far from unit norm")
    return q / n


def read_motion(name: str, text: str, urdf_text: str) -> MocapClip:
    try:
        frames = np.asarray(json.loads(text)["Frames"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as e:
        raise SourceError("bad_shape", name, f"expected JSON {{'Frames': [[44 numbers], ...]}}: {e}") from e
    joints = motion_to_joints(frames, joint_offsets(urdf_text), name)
    dur = float(np.median(frames[:, 0]))
    if not dur > 0:
        raise SourceError("bad_shape", name, f"frame duration must be > 0 s, got {dur}")
    order = tuple(NAMES)
    pos = np.stack([joints[k] for k in order], axis=1) @ Y_UP_TO_Z_UP.T  # the files' floor is y = 0
    return MocapClip(name, 1.0 / dur, tuple(NAMES[k] for k in order), pos)


def download_wheel(cache: Path) -> Path | None:
    """pybullet's wheel in `cache` (pip download once; None when no registry is reachable)."""
    from robomirror.wheel_cache import cached_wheel

    return cached_wheel(cache, PYBULLET_WHEEL, "pybullet-*.whl")


def load_clips(wheel: Path, names: tuple[str, ...] | None = None) -> list[MocapClip]:
    """The humanoid3d motions in pybullet's wheel (all, or those named: 'crawl', 'cartwheel', ...)."""
    out = []
    with zipfile.ZipFile(wheel) as z:
        urdf = z.read(URDF_MEMBER).decode()
        for member in sorted(n for n in z.namelist() if n.startswith(MOTION_PREFIX) and n.endswith(".txt")):
            name = member[len(MOTION_PREFIX):-4]
            if names is None or name in names:
                out.append(read_motion(name, io.TextIOWrapper(io.BytesIO(z.read(member))).read(), urdf))
    return out
