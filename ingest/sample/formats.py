"""Sample files in the layouts of the G1 trajectory corpora (issue 23), written from a procedural G1 motion.

Layouts are the public loaders' (see ingest/g1_csv.py), never the real data: the licence-gated
corpora stay out of the repository.
- Unitree LAFAN1 G1 CSV: `<root>/g1/<action><take>_subject<k>.csv`, no header, 36 columns per row
  (root xyz [m], root quaternion xyzw, 29 joints [rad] in G1_29DOF_JOINTS order), 30 fps.
- BONES-SEED (ingest/bones_seed.py): `<root>/g1/csv/<date>/<filename>.csv` with a header (Frame, root
  translate [cm], root rotate [deg, extrinsic xyz], <joint>_dof [deg]), 120 fps; `<root>/metadata/` with
  the metadata parquet (descriptions per `filename`) and the temporal-labels jsonl; beside the CSV, the same
  motion as SOMA BVH in `<root>/soma_uniform/bvh/<date>/<filename>.bvh` (ingest/sample/soma.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robomirror.atomic import publish_bytes
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.rotations import quat_wxyz_to_matrix, quat_wxyz_to_xyzw

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


def quat_wxyz_to_euler_xyz_extrinsic_deg(quat_wxyz: np.ndarray) -> np.ndarray:
    """(T, 4) wxyz -> (T, 3) [rotX, rotY, rotZ] degrees with R = Rz Ry Rx (BONES-SEED's root_rotate*)."""
    m = quat_wxyz_to_matrix(quat_wxyz)
    x = np.arctan2(m[:, 2, 1], m[:, 2, 2])
    y = np.arcsin(np.clip(-m[:, 2, 0], -1.0, 1.0))
    z = np.arctan2(m[:, 1, 0], m[:, 0, 0])
    return np.rad2deg(np.stack([x, y, z], -1))


def bones_seed_table(root_pos_w: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray) -> tuple:
    """(header, rows) of a BONES-SEED G1 CSV: Frame, root [cm], root Euler [deg], joints [deg] by name."""
    from ingest.bones_seed import CM_PER_M, COLUMNS

    n = len(root_pos_w)
    rows = np.concatenate([np.arange(n)[:, None], root_pos_w * CM_PER_M,
                           quat_wxyz_to_euler_xyz_extrinsic_deg(root_quat_wxyz), np.rad2deg(joint_pos)], axis=1)
    return list(COLUMNS), rows


def write_bones_seed_csv(path: Path, header: list[str], rows: np.ndarray) -> None:
    lines = [",".join(header)] + [",".join([str(int(r[0]))] + [f"{v:.6f}" for v in r[1:]]) for r in rows]
    publish_bytes(path, ("\n".join(lines) + "\n").encode())


BONES_SEED_SAMPLE = (  # (take date, filename, seconds, descriptions, temporal events)
    ("210531", "neutral_walk_turn_left_001__A001", 3.0,
     ("A person steps in place while turning to the left.", "Someone marks time and slowly turns left."),
     ((0.0, 1.5, "steps in place"), (1.5, 3.0, "keeps stepping while turning left"))),
    ("210602", "neutral_march_in_place_002__A002", 6.0,
     ("A person marches in place, swinging the arms.",), ((0.0, 6.0, "marches in place"),)),
)


def write_bones_seed_root(root: Path, seed: int = 0, soma_bvh: bool = True) -> list[Path]:
    """A tiny BONES-SEED tree: g1/csv/<date>/*.csv at 120 fps, metadata parquet and temporal labels, and
    (soma_bvh) each motion again as SOMA BVH, the human motion the G1 CSV was retargeted from."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingest.sample.soma import write_soma_bvh

    fps, out, rows_meta = 120.0, [], []
    for k, (date, name, seconds, descs, _) in enumerate(BONES_SEED_SAMPLE):
        motion = g1_walk_in_place(int(seconds * fps), fps, seed + k)
        header, rows = bones_seed_table(*motion)
        p = root / "g1" / "csv" / date / f"{name}.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        write_bones_seed_csv(p, header, rows)
        out.append(p)
        if soma_bvh:
            write_soma_bvh(root / "soma_uniform" / "bvh" / date / f"{name}.bvh", *motion)
            out.append(root / "soma_uniform" / "bvh" / date / f"{name}.bvh")
        row = {"filename": name, "move_name": name.split("__")[0], "take_date": date, "is_mirror": False,
               "move_g1_path": f"g1/csv/{date}/{name}.csv", "move_duration_frames": len(rows),
               "move_soma_uniform_path": f"soma_uniform/bvh/{date}/{name}.bvh",
               "category": "Basic Locomotion Neutral", "actor_uid": name.split("__")[-1],
               "content_short_description": name.split("__")[0].replace("_", " "),
               "content_technical_description": "Alternating hip and knee flexion with the trunk upright."}
        row.update({f"content_natural_desc_{i + 1}": d for i, d in enumerate(descs)})
        rows_meta.append(row)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows_meta)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    publish_bytes(root / "metadata" / "seed_metadata_v004.parquet", buf.getvalue().to_pybytes())
    labels = [json.dumps({"filename": name, "num_events": len(ev),
                          "events": [{"start_time": a, "end_time": b, "description": d} for a, b, d in ev]})
              for _, name, _, _, ev in BONES_SEED_SAMPLE]
    publish_bytes(root / "metadata" / "seed_metadata_v002_temporal_labels.jsonl", ("\n".join(labels) + "\n").encode())
    return out
