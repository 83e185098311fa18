"""Sample files in the layouts of the G1 trajectory corpora (issue 23), written from a procedural G1 motion.

Layouts are the public loaders' (see ingest/g1_csv.py), never the real data: the licence-gated
corpora stay out of the repository.
- Unitree LAFAN1 G1 CSV: `<root>/g1/<action><take>_subject<k>.csv`, no header, 36 columns per row
  (root xyz [m], root quaternion xyzw, 29 joints [rad] in G1_29DOF_JOINTS order), 30 fps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robomirror.atomic import publish_bytes
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.rotations import quat_wxyz_to_xyzw

_DEFAULT = {"hip_pitch": -0.312, "knee": 0.669, "ankle_pitch": -0.363, "elbow": 0.6, "shoulder_pitch": 0.2}


def g1_walk_in_place(n_frames: int, fps: float, seed: int = 0, yaw_rate_rad_s: float = 0.3) -> tuple:
    """A G1 stepping in place while turning: (root_pos_w (T, 3) [m], root_quat_wxyz (T, 4), joint_pos (T, 29)).

    The knees bend in turn around the standing pose; the root height keeps the lowest sole at z = 0.
    """
    from retarget.robot import G1

    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    base = np.array([next((v for k, v in _DEFAULT.items() if k in j), 0.0) for j in G1_29DOF_JOINTS])
    joints = np.repeat(base[None], n_frames, axis=0)
    phase = 2 * np.pi * (0.8 + 0.2 * rng.random()) * t
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lift = 0.25 * np.clip(sign * np.sin(phase), 0, None)
        joints[:, G1_29DOF_JOINTS.index(f"{side}_hip_pitch_joint")] -= lift
        joints[:, G1_29DOF_JOINTS.index(f"{side}_knee_joint")] += 2 * lift
        joints[:, G1_29DOF_JOINTS.index(f"{side}_ankle_pitch_joint")] -= lift
        joints[:, G1_29DOF_JOINTS.index(f"{side}_shoulder_pitch_joint")] += 0.3 * sign * np.sin(phase)
    yaw = yaw_rate_rad_s * t
    quat = np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], -1)
    root = np.zeros((n_frames, 3))
    root[:, :2] = rng.normal(0, 0.5, 2)
    robot = G1("g1_29dof")
    root[:, 2] = 0.0
    sole = robot.foot_bottom_z(robot.qpos(root, quat, joints)).min(axis=1)
    root[:, 2] = -sole
    return root, quat, joints


def lafan1_rows(root_pos_w: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
    """(T, 36) rows as Unitree's loader reads them: xyz, quaternion xyzw, 29 joints."""
    return np.concatenate([root_pos_w, quat_wxyz_to_xyzw(root_quat_wxyz), joint_pos], axis=1)


def write_lafan1_csv(path: Path, rows: np.ndarray) -> None:
    text = "\n".join(",".join(f"{v:.9g}" for v in r) for r in rows) + "\n"
    publish_bytes(path, text.encode())


def write_lafan1_root(root: Path, n_takes: int = 2, seed: int = 0) -> list[Path]:
    """`<root>/g1/*.csv` takes (30 fps, 3-7 s each) plus an `h1/` folder the reader must not read."""
    out = []
    for k in range(n_takes):
        n = int(30 * (3 + 2 * k))
        rows = lafan1_rows(*g1_walk_in_place(n, 30.0, seed + k))
        p = root / "g1" / f"walk{k + 1}_subject{k + 1}.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        write_lafan1_csv(p, rows)
        out.append(p)
    (root / "h1").mkdir(parents=True, exist_ok=True)
    write_lafan1_csv(root / "h1" / "walk1_subject1.csv", np.zeros((5, 7 + 19)))
    return out
