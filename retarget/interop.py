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

from retarget.g1 import G1_23DOF_JOINTS, G1_29DOF_JOINTS
from retarget.motion import RobotMotion
from retarget.robot import G1
from retarget.tracker_files import TARGETS, orders, to_29dof, tracker_dict
from robomirror.atomic import load_npz_bytes, npz_bytes, publish_bytes
from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout
from robomirror.rotations import quat_wxyz_to_xyzw, quat_xyzw_to_wxyz
from robomirror.safe_pickle import safe_load
from robomirror.shards import find_sample


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


LIMIT_MARGIN_RAD = 0.5  # joint values this far past the MJCF range are not a G1 motion
QUAT_NORM_TOL = 0.05  # root quaternions must be unit within this
FPS_RANGE_HZ = (1.0, 1000.0)  # plausible frame rates: mocap runs 30-480 Hz, simulators up to 1 kHz
ROOT_POS_BOUND_M = 100.0  # the root stays this close to the origin (a capture volume or a long walk)


def _fps(value, path: Path, problems: list[str]) -> float:
    """The file's frame rate as a float, if it is a real number (not a bool, string or array)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        problems.append(f"fps must be a real number, got {type(value).__name__} {value!r:.40}")
        return float("nan")
    return float(value)


def _real_array(d: dict, key: str, width: int | None, problems: list[str]) -> np.ndarray:
    """d[key] as a (T, width) float64 array (width None: 23 or 29 joints); every problem is collected."""
    a = np.asarray(d[key])
    if a.dtype.kind == "c":
        problems.append(f"{key} is complex ({a.dtype}); motions are real-valued (the imaginary part would be dropped)")
    elif a.dtype.kind not in "iuf":
        problems.append(f"{key} must hold real numbers, found dtype {a.dtype}")
    want = "(T, 23) or (T, 29)" if width is None else f"(T, {width})"
    if a.ndim == 2 and width is None and a.shape[1] not in (23, 29):
        problems.append(f"{key} has {a.shape[1]} joint columns; expected 23 (g1_23dof) or 29 (g1_29dof)")
    elif a.ndim != 2 or (width is not None and a.shape[1] != width):
        problems.append(f"{key} has shape {a.shape}, expected {want}")
    if problems:
        return np.zeros((0, width or 23))
    return a.astype(np.float64)


def _read_arrays(d: dict, keys: tuple[str, str, str, str], path: Path, fmt: str) -> tuple:
    """(fps, root_pos (T, 3), root_rot xyzw (T, 4), dof (T, n)) of a pickle's dict, or one InteropError
    naming every problem of type and shape (values are checked by validate_motion)."""
    problems: list[str] = []
    fps = _fps(d[keys[0]], path, problems)
    arrays = [_real_array(d, k, w, problems) for k, w in zip(keys[1:], (3, 4, None), strict=True)]
    if problems:
        raise InteropError(f"{path}: not a valid {fmt} motion: " + "; ".join(problems))
    return (fps, *arrays)


def validate_motion(m: RobotMotion, path: Path) -> RobotMotion:
    """Check the values of an imported motion (after unpickling); report every problem at once."""
    problems = []
    lo_hz, hi_hz = FPS_RANGE_HZ
    if not (np.isfinite(m.fps) and m.fps > 0):
        problems.append(f"fps must be a finite number > 0, got {m.fps}")
    elif not lo_hz <= m.fps <= hi_hz:
        problems.append(f"fps must be within [{lo_hz:g}, {hi_hz:g}] Hz, got {m.fps:g}")
    n = len(m.root_pos_w)
    if n == 0:
        problems.append("zero frames")
    shapes = {"root_pos": m.root_pos_w.shape, "root_rot": m.root_quat_wxyz.shape, "dof": m.joint_pos.shape}
    if m.root_pos_w.shape != (n, 3) or m.root_quat_wxyz.shape != (n, 4) or m.joint_pos.shape[0] != n:
        problems.append(f"arrays disagree on frame count or width (expected (T, 3), (T, 4), (T, n_dof)): {shapes}")
    for name, a in (("root_pos", m.root_pos_w), ("root_rot", m.root_quat_wxyz), ("dof", m.joint_pos)):
        if not np.all(np.isfinite(a)):
            problems.append(f"{name} has NaN or inf")
    if not problems and n:
        far = float(np.linalg.norm(m.root_pos_w, axis=-1).max())
        if far > ROOT_POS_BOUND_M:
            problems.append(f"the root goes {far:.3g} m from the origin; at most {ROOT_POS_BOUND_M:g} m is a motion")
        norm = np.linalg.norm(m.root_quat_wxyz, axis=-1)
        if np.any(np.abs(norm - 1.0) > QUAT_NORM_TOL):
            problems.append(f"root quaternions must be unit (|q| in 1 ± {QUAT_NORM_TOL}); found |q| from "
                            f"{norm.min():.3g} to {norm.max():.3g}")
        robot = G1("g1_29dof" if len(m.joint_names) == 29 else "g1_23dof")
        lo, hi = robot.joint_limits
        bad = (m.joint_pos < lo - LIMIT_MARGIN_RAD) | (m.joint_pos > hi + LIMIT_MARGIN_RAD)
        if bad.any():
            j = int(np.argmax(bad.any(axis=0)))
            problems.append(f"{int(bad.sum())} joint values more than {LIMIT_MARGIN_RAD} rad outside the G1 limits "
                            f"(first: {m.joint_names[j]} = {m.joint_pos[bad[:, j], j][0]:.3g} rad, range "
                            f"[{lo[j]:.2f}, {hi[j]:.2f}])")
    if problems:
        raise InteropError(f"{path}: not a valid G1 motion: " + "; ".join(problems))
    return m


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
        if not isinstance(d, dict):
            raise InteropError(f"{path}: not a pbhc motion: entry {name!r} is a {type(d).__name__}, expected a dict "
                               "of arrays (root_trans_offset, root_rot, dof, fps)")
        _need(d, ("root_trans_offset", "root_rot", "dof", "fps"), path, "PHC/PBHC")
        fps, root_pos, root_rot, dof = _read_arrays(d, ("fps", "root_trans_offset", "root_rot", "dof"), path,
                                                    "PHC/PBHC")
        contact = np.asarray(d["contact_mask"]) > 0.5 if "contact_mask" in d else None
        out.append(validate_motion(RobotMotion(fps, _joints_for(dof.shape[1], path), root_pos,
                                               quat_xyzw_to_wxyz(root_rot), dof, contact), path))
    return out


def import_gmr(path: Path) -> RobotMotion:
    d = safe_load(path)
    if not isinstance(d, dict):
        raise InteropError(f"{path}: expected a dict, found {type(d).__name__}")
    _need(d, ("fps", "root_pos", "root_rot", "dof_pos"), path, "GMR")
    fps, root_pos, root_rot, dof = _read_arrays(d, ("fps", "root_pos", "root_rot", "dof_pos"), path, "GMR")
    m = RobotMotion(fps, _joints_for(dof.shape[1], path), root_pos, quat_xyzw_to_wxyz(root_rot), dof)
    return _integer_rate(validate_motion(m, path))


def detect_joint_order(d: dict[str, np.ndarray], path: Path) -> tuple[str, ...]:
    """A file without joint names: find the joint order (and body order) whose forward kinematics
    reproduces the file's own body positions — MuJoCo depth-first (mjlab) or Isaac Lab breadth-first
    (BeyondMimic, bodies breadth-first too); refuse if none does."""
    n = d["joint_pos"].shape[1]
    robot = G1("g1_29dof" if n == 29 else "g1_23dof")
    k = min(5, len(d["joint_pos"]))
    errors = {}
    for jname in ("mujoco", "isaaclab_bfs"):  # forward kinematics once per joint order
        joints, _ = orders(robot, jname)
        perm = [joints.index(j) for j in robot.config.joints]
        qpos = robot.qpos(d["body_pos_w"][:k, 0].astype(np.float64), d["body_quat_w"][:k, 0].astype(np.float64),
                          d["joint_pos"][:k][:, perm].astype(np.float64))
        pos_mj, _ = robot.bodies(qpos)
        for bname in ("mujoco", "isaaclab_bfs"):  # then each body order is a permutation
            _, bodies = orders(robot, bname)
            pos = pos_mj[:, [robot.body_names.index(b) for b in bodies]]
            if pos.shape[1] == d["body_pos_w"].shape[1]:
                errors[f"joints {jname}, bodies {bname}"] = (float(np.abs(pos - d["body_pos_w"][:k]).max()), joints)
    best = min(errors.items(), key=lambda kv: kv[1][0]) if errors else None
    if best is None or best[1][0] > 0.01:
        found = {k: round(v[0], 3) for k, v in errors.items()}
        raise InteropError(f"{path}: no joint order reproduces the file's body positions (max error [m] per "
                           f"order: {found}; the file has {d['body_pos_w'].shape[1]} bodies, the G1 "
                           f"{len(robot.body_names)}); pass joint_names explicitly")
    return best[1][1]


def import_beyondmimic(path: Path) -> RobotMotion:
    return validate_motion(_import_beyondmimic(path), path)


def import_beyondmimic_bytes(data: bytes, name: str) -> RobotMotion:
    """A BeyondMimic npz held in memory (a member of a wheel or a tar); `name` labels the errors."""
    import io

    return validate_motion(_import_beyondmimic(io.BytesIO(data), Path(name)), Path(name))


def _import_beyondmimic(source, path: Path | None = None) -> RobotMotion:
    """`source`: a file path or a file-like object; `path`: what the errors call it (default: `source`)."""
    path = Path(source) if path is None else path
    try:
        with np.load(source, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise InteropError(f"{path}: not a readable npz without pickle: {e}") from e
    _need(d, ("fps", "joint_pos", "body_pos_w", "body_quat_w"), path, "BeyondMimic")
    _joints_for(d["joint_pos"].shape[1], path)
    names = None if "joint_names" in d else detect_joint_order(d, path)
    if "body_names" in d:  # the root is the pelvis, wherever the file's body order puts it
        bodies = [str(b) for b in d["body_names"]]
        if "pelvis" not in bodies:
            raise InteropError(f"{path}: body_names has no 'pelvis' (the root); found {bodies[:5]}...")
        i = bodies.index("pelvis")
        d = {**d, "body_pos_w": d["body_pos_w"][:, i:i + 1], "body_quat_w": d["body_quat_w"][:, i:i + 1]}
    m = RobotMotion.from_beyondmimic(d, names)
    ours = _joints_for(len(m.joint_names), path)
    if m.joint_names != ours:  # store in our (MuJoCo) order, whatever order the file used
        unknown = sorted(set(ours) ^ set(m.joint_names))
        if unknown:
            raise InteropError(f"{path}: joint_names differ from the G1's: {unknown}")
        names = m.joint_names
        perm = [names.index(j) for j in ours]
        m = RobotMotion(m.fps, _joints_for(len(names), path), m.root_pos_w, m.root_quat_wxyz, m.joint_pos[:, perm],
                        m.contact)
    return m


def import_file(path: Path, fmt: str) -> RobotMotion:
    """One motion from a file in `fmt`; anything that is not that format is an InteropError."""
    try:
        return _import_file(path, fmt)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise InteropError(f"{path}: not a {fmt} motion file ({type(e).__name__}: {e}); formats: "
                           "pbhc (PHC/PBHC pickle), gmr (GMR pickle), beyondmimic (npz)") from e


def _import_file(path: Path, fmt: str) -> RobotMotion:
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


def floor_offset_m(m: RobotMotion, robot: G1) -> float:
    """Height [m] of the floor a robot motion stands on: the median over frames of the lowest foot
    point (robust to jumps; held-out GMT/PBHC files put it 2-15 cm below z = 0)."""
    qpos = robot.qpos(m.root_pos_w, m.root_quat_wxyz, m.joint_pos)
    return float(np.median(robot.foot_bottom_z(qpos).min(axis=1)))


def grounded(m: RobotMotion, robot: G1) -> tuple[RobotMotion, float]:
    """The motion shifted vertically so its floor is z = 0; returns (motion, shift [m])."""
    dz = -floor_offset_m(m, robot)
    root = m.root_pos_w.copy()
    root[:, 2] += dz
    return RobotMotion(m.fps, m.joint_names, root, m.root_quat_wxyz, m.joint_pos, m.contact), dz


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
    members = find_sample(layout.root, "retarget", clip_id)
    if members is not None:
        return RobotMotion.from_beyondmimic(load_npz_bytes(members["robot.npz"])), json.loads(members["retarget.json"])
    raise InteropError(f"clip {clip_id!r} is not in any retarget manifest under {layout.root}; "
                       "try: python -m catalog sql \"SELECT clip_id FROM retarget LIMIT 5\"")


def write_tracker(path: Path, m: RobotMotion, fmt: str, robot_name: str = "g1_29dof",
                  robot_xml: str | None = None, fps: float | None = None) -> None:
    """A BeyondMimic or mjlab motion file: 29 joints in the target's joint and body order."""
    publish_bytes(path, npz_bytes(tracker_dict(m, fmt, robot_name, robot_xml, fps)))


def motion_for_robot(m: RobotMotion, robot_name: str) -> RobotMotion:
    """The motion with exactly `robot_name`'s joints (missing ones at their locked value, 0)."""
    m29 = to_29dof(m)
    joints = G1_29DOF_JOINTS if robot_name == "g1_29dof" else G1_23DOF_JOINTS
    cols = [G1_29DOF_JOINTS.index(j) for j in joints]
    return RobotMotion(m.fps, joints, m.root_pos_w, m.root_quat_wxyz, m29.joint_pos[:, cols], m.contact)


def export_clip(layout: DataLayout, clip_id: str, fmt: str, out: Path, fps: float, robot_name: str,
                robot_xml: str | None = None) -> None:
    """BeyondMimic/mjlab files always carry 29 joints (`robot_name` g1_23dof writes the wrists
    locked); GMR pickles carry `robot_name`'s 23 or 29."""
    motion, _ = load_clip_motion(layout, clip_id)
    if fmt in TARGETS:
        write_tracker(out, motion, fmt, robot_name, robot_xml, fps)
    elif fmt == "gmr":
        m = motion_for_robot(motion, robot_name)
        write_gmr(out, m, G1(robot_name, robot_xml), fps)
    else:
        raise InteropError(f"unknown export format {fmt!r}; expected beyondmimic, mjlab or gmr")

