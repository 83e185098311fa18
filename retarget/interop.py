"""Import and export robot motions in the formats researchers already have.

- PHC / PBHC pickles: {name: {root_trans_offset (T,3), root_rot (T,4) xyzw, dof (T,23), pose_aa,
  contact_mask (T,2), fps, smpl_joints}}. smpl_joints may be all zeros (it is in the shared PBHC
  files), so it is never used.
- GMR pickles: {fps (may be non-integer), root_pos (T,3), root_rot (T,4) xyzw, dof_pos (T,23|29),
  local_body_pos (T,B,3), link_body_list}.
- BeyondMimic npz: see retarget.motion.
All pickles go through the restricted unpickler. Quaternions are converted to wxyz here and only here.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from retarget.g1 import G1_23DOF_JOINTS, G1_29DOF_JOINTS
from retarget.motion import RobotMotion
from retarget.robot import G1
from retarget.safe_pickle import safe_load
from robomirror.atomic import load_npz_bytes, npz_bytes, publish_bytes
from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout
from robomirror.rotations import quat_wxyz_to_xyzw, quat_xyzw_to_wxyz
from robomirror.tario import read_tar


class InteropError(RoboMirrorError):
    """A motion file is not in the format it was read as."""


def _joints_for(n: int, path: Path) -> tuple[str, ...]:
    if n == 23:
        return G1_23DOF_JOINTS
    if n == 29:
        return G1_29DOF_JOINTS
    raise InteropError(f"{path}: {n} joint columns; expected 23 (g1_23dof) or 29 (g1_29dof)")


def _need(d: dict, keys: tuple[str, ...], path: Path, fmt: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise InteropError(f"{path}: not a {fmt} motion: missing {missing}; found {sorted(d)}")


def _integer_rate(m: RobotMotion) -> RobotMotion:
    """GMR files carry rates such as 59.99999; resample them onto the nearest whole rate."""
    target = float(round(m.fps))
    return m if abs(m.fps - target) < 1e-9 else m.resampled(target)


def import_pbhc(path: Path) -> list[RobotMotion]:
    data = safe_load(path)
    if not isinstance(data, dict):
        raise InteropError(f"{path}: expected a dict of motions, found {type(data).__name__}")
    out = []
    for name in sorted(data):
        d = data[name]
        _need(d, ("root_trans_offset", "root_rot", "dof", "fps"), path, "PHC/PBHC")
        dof = np.asarray(d["dof"], dtype=np.float64)
        contact = np.asarray(d["contact_mask"]) > 0.5 if "contact_mask" in d else None
        out.append(RobotMotion(float(d["fps"]), _joints_for(dof.shape[1], path),
                               np.asarray(d["root_trans_offset"], dtype=np.float64),
                               quat_xyzw_to_wxyz(np.asarray(d["root_rot"], dtype=np.float64)), dof, contact))
    return out


def import_gmr(path: Path) -> RobotMotion:
    d = safe_load(path)
    if not isinstance(d, dict):
        raise InteropError(f"{path}: expected a dict, found {type(d).__name__}")
    _need(d, ("fps", "root_pos", "root_rot", "dof_pos"), path, "GMR")
    dof = np.asarray(d["dof_pos"], dtype=np.float64)
    m = RobotMotion(float(d["fps"]), _joints_for(dof.shape[1], path), np.asarray(d["root_pos"], dtype=np.float64),
                    quat_xyzw_to_wxyz(np.asarray(d["root_rot"], dtype=np.float64)), dof)
    return _integer_rate(m)


def import_beyondmimic(path: Path) -> RobotMotion:
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise InteropError(f"{path}: not a readable npz without pickle: {e}") from e
    _need(d, ("fps", "joint_pos", "body_pos_w", "body_quat_w"), path, "BeyondMimic")
    names = None if "joint_names" in d else _joints_for(d["joint_pos"].shape[1], path)
    return RobotMotion.from_beyondmimic(d, names)


def import_file(path: Path, fmt: str) -> RobotMotion:
    if fmt == "pbhc":
        motions = import_pbhc(path)
        if len(motions) != 1:
            raise InteropError(f"{path}: holds {len(motions)} motions; import them with import_pbhc()")
        return motions[0]
    if fmt == "gmr":
        return import_gmr(path)
    if fmt == "beyondmimic":
        return import_beyondmimic(path)
    raise InteropError(f"unknown format {fmt!r}; expected pbhc, gmr or beyondmimic")


def robot_for_motion(m: RobotMotion, robot_xml: str | None = None) -> G1:
    return G1("g1_29dof" if len(m.joint_names) == 29 else "g1_23dof", robot_xml)


def beyondmimic_bytes(m: RobotMotion, robot: G1, fps: float | None = None) -> bytes:
    return npz_bytes(m.resampled(fps or m.fps).to_beyondmimic(robot))


def write_beyondmimic(path: Path, m: RobotMotion, robot: G1 | None = None, fps: float | None = None) -> None:
    publish_bytes(path, beyondmimic_bytes(m, robot or robot_for_motion(m), fps))


def gmr_dict(m: RobotMotion, robot: G1) -> dict:
    """GMR layout; local_body_pos = body positions in the root frame."""
    bm = m.to_beyondmimic(robot)
    rot = np.linalg.inv(_quat_to_matrix(m.root_quat_wxyz))
    local = np.einsum("tij,tbj->tbi", rot, bm["body_pos_w"] - m.root_pos_w[:, None])
    return {"fps": float(m.fps), "root_pos": m.root_pos_w.astype(np.float32),
            "root_rot": quat_wxyz_to_xyzw(m.root_quat_wxyz).astype(np.float32),
            "dof_pos": m.joint_pos.astype(np.float32), "local_body_pos": local.astype(np.float32),
            "link_body_list": list(robot.body_names)}


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    from robomirror.rotations import quat_wxyz_to_matrix

    return quat_wxyz_to_matrix(q)


def write_gmr(path: Path, m: RobotMotion, robot: G1 | None = None, fps: float | None = None) -> None:
    m = m.resampled(fps or m.fps)
    publish_bytes(path, pickle.dumps(gmr_dict(m, robot or robot_for_motion(m)), protocol=4))


def load_clip_motion(layout: DataLayout, clip_id: str) -> tuple[RobotMotion, dict]:
    """A retargeted clip's motion and report, found through the retarget manifests."""
    for manifest in sorted(layout.root.glob("shards/retarget/*/manifest.parquet")):
        rows = [r for r in pq.read_table(manifest, columns=["clip_id", "shard"]).to_pylist() if r["clip_id"] == clip_id]
        if rows:
            members = {n: d for n, d in read_tar(str(manifest.parent / rows[0]["shard"])) if n.startswith(clip_id)}
            motion = RobotMotion.from_beyondmimic(load_npz_bytes(members[f"{clip_id}.robot.npz"]))
            return motion, json.loads(members[f"{clip_id}.retarget.json"])
    raise InteropError(f"clip {clip_id!r} is not in any retarget manifest under {layout.root}; "
                       "try: python -m catalog sql \"SELECT clip_id FROM retarget LIMIT 5\"")


def export_clip(layout: DataLayout, clip_id: str, fmt: str, out: Path, fps: float, robot_name: str,
                robot_xml: str | None = None) -> None:
    motion, _ = load_clip_motion(layout, clip_id)
    robot = robot_for_motion(motion, robot_xml)
    if fmt == "beyondmimic":
        write_beyondmimic(out, motion, robot, fps)
    elif fmt == "gmr":
        write_gmr(out, motion, robot, fps)
    else:
        raise InteropError(f"unknown export format {fmt!r}; expected beyondmimic or gmr")

