"""DeepMimic's clips written as Motion-X sequences, so real mocap of hard skills goes through the path a
new user's data takes (Motion-X reader, up-axis decision, clipping, shards) instead of straight in.

Each DeepMimic frame's world rotations (retarget/deepmimic.py) become SMPL-X parameters of the
licence-free skeleton (ingest/body_model.py): the humanoid's body axes (x forward, y up, z right) map
onto SMPL's (x left, y up, z forward) by a quarter turn about y, its hanging arms onto SMPL's T-pose arms
by a quarter turn about the forward axis, and its one chest joint is shared equally by SMPL's three
spine joints. The root keeps DeepMimic's trajectory (so its flights stay ballistic), shifted so the
skeleton's lowest joint rests on the floor. Files are written y-up, in the Motion-X++ layout
(`motion/motion_generation/smplx322/<subset>/<name>.npy`, `text/semantic_label/...`), with the clips'
own rates in `sequence_fps.csv`.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ingest.body_model import BuiltinSkeleton
from ingest.motionx import FPS_TABLE, LAYOUTS, MOTIONX_COLUMNS, MOTIONX_WIDTH
from ingest.skeletons import SMPL_BODY_22, SMPL_BODY_22_PARENTS
from ingest.up_axis import JOINT_CLEARANCE_M
from retarget.deepmimic import MOTION_PREFIX, URDF_MEMBER, forward_kinematics, joint_offsets
from robomirror.rotations import axis_angle_to_matrix, matrix_to_axis_angle

# SMPL body axes -> DeepMimic body axes (+90 deg about y): SMPL left = DeepMimic -z, forward = +x
M_DM_FROM_SMPL = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
# SMPL T-pose arm (+-x) -> hanging down (-y), in SMPL body axes
ARM_DOWN = {"left": axis_angle_to_matrix(np.array([0.0, 0.0, -np.pi / 2])),
            "right": axis_angle_to_matrix(np.array([0.0, 0.0, np.pi / 2]))}
# SMPL body joint -> the DeepMimic joint whose world rotation it takes (spine1..3 share the chest's)
SOURCE = {"pelvis": "root", "left_hip": "left_hip", "right_hip": "right_hip", "left_knee": "left_knee",
          "right_knee": "right_knee", "left_ankle": "left_ankle", "right_ankle": "right_ankle",
          "left_foot": "left_ankle", "right_foot": "right_ankle", "neck": "neck", "head": "neck",
          "left_collar": "chest", "right_collar": "chest", "left_shoulder": "left_shoulder",
          "right_shoulder": "right_shoulder", "left_elbow": "left_elbow", "right_elbow": "right_elbow",
          "left_wrist": "left_elbow", "right_wrist": "right_elbow"}
# clip -> Motion-X subset it is filed under (all document y-up)
SUBSETS = {"dance_a": "dance", "dance_b": "dance", "kick": "kungfu", "punch": "kungfu", "spinkick": "kungfu"}


def smplx_params(frames: np.ndarray, offsets: dict[str, np.ndarray], name: str = "") -> dict[str, np.ndarray]:
    """(T, 44) DeepMimic frames -> SMPL-X root_orient (T, 3), pose_body (T, 63), trans (T, 3), betas (T, 10);
    y-up, the floor at y = 0."""
    pos, rot = forward_kinematics(frames, offsets, name)
    t = len(frames)
    m = M_DM_FROM_SMPL
    glob = {}
    for j in SMPL_BODY_22:
        if j in SOURCE:
            g = rot[SOURCE[j]] @ m
            side = j.split("_")[0]
            if side in ARM_DOWN and j.split("_", 1)[1] in ("shoulder", "elbow", "wrist"):
                g = g @ ARM_DOWN[side]
            glob[j] = g
    chest_local = matrix_to_axis_angle(np.einsum("tji,tjk->tik", glob["pelvis"], rot["chest"] @ m))
    for k, j in enumerate(("spine1", "spine2", "spine3"), start=1):
        glob[j] = glob["pelvis"] @ axis_angle_to_matrix(chest_local * k / 3)
    local = np.stack([np.einsum("tji,tjk->tik", glob[SMPL_BODY_22[p]], glob[j]) if p >= 0 else glob[j]
                      for j, p in zip(SMPL_BODY_22, SMPL_BODY_22_PARENTS, strict=True)], axis=1)
    aa = matrix_to_axis_angle(local)
    out = {"root_orient": aa[:, 0], "pose_body": aa[:, 1:].reshape(t, 63), "trans": pos["root"].copy(),
           "betas": np.zeros((t, 10))}
    joints = BuiltinSkeleton("smplx").joints(out["root_orient"], out["pose_body"], out["trans"], out["betas"])
    out["trans"][:, 1] += JOINT_CLEARANCE_M - np.percentile(joints[:, :22, 1].min(1), 5)
    return out


def read_wheel(wheel: Path) -> list[tuple[str, np.ndarray, float, dict[str, np.ndarray]]]:
    """(name, frames (T, 44), fps, URDF offsets) of every humanoid3d clip in pybullet's wheel."""
    out = []
    with zipfile.ZipFile(wheel) as z:
        offsets = joint_offsets(z.read(URDF_MEMBER).decode())
        for member in sorted(n for n in z.namelist() if n.startswith(MOTION_PREFIX) and n.endswith(".txt")):
            frames = np.asarray(json.loads(io.TextIOWrapper(io.BytesIO(z.read(member))).read())["Frames"], dtype=np.float64)
            out.append((member[len(MOTION_PREFIX):-4], frames, 1.0 / float(np.median(frames[:, 0])), offsets))
    return out


def write_motionx_root(wheel: Path, root: Path) -> list[tuple[str, str]]:
    """Every DeepMimic clip as a Motion-X++ sequence under `root`; returns (subset, name) per clip."""
    motion_dir, text_dir, _ = LAYOUTS["motionx++"]
    written, rates = [], []
    for name, frames, fps, offsets in read_wheel(wheel):
        p = smplx_params(frames, offsets, name)
        row = np.zeros((len(frames), MOTIONX_WIDTH), dtype=np.float32)
        for k, v in p.items():
            a, b = MOTIONX_COLUMNS[k]
            row[:, a:b] = v
        subset = SUBSETS.get(name, "perform")
        (root / motion_dir / subset).mkdir(parents=True, exist_ok=True)
        (root / text_dir / subset).mkdir(parents=True, exist_ok=True)
        np.save(root / motion_dir / subset / f"{name}.npy", row)
        (root / text_dir / subset / f"{name}.txt").write_text(f"a person does a {name.replace('_', ' ')}\n")
        written.append((subset, name))
        rates.append((subset, name, f"{fps:.6f}"))
    with open(root / FPS_TABLE, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["subset", "name", "fps"])
        w.writerows(rates)
    return written
