"""G1 joint trajectories as ingest sources: Unitree's LAFAN1 retargeting CSV, and the shared path every
robot-motion reader (BONES-SEED G1 CSV, LeRobot datasets) takes into the store.

**Unitree LAFAN1 G1 CSV** (`unitreerobotics/LAFAN1_Retargeting_Dataset`, folder `g1/`): no header, one row
per frame at 30 fps, 36 comma-separated numbers = the pinocchio free-flyer configuration their
`rerun_visualize.py` hands straight to `framesForwardKinematics` with `g1_29dof_rev_1_0.urdf`:
root position xyz [m], root quaternion **xyzw** (pinocchio's order; their T-pose row is
`0,0,0.785, 0,0,0,1, ...`), then the 29 joint angles [rad] in the URDF's order, which is
`robomirror.g1_contract.G1_29DOF_JOINTS` (legs, waist yaw/roll/pitch, left arm, right arm). The
folders `h1/` and `h1_2/` hold other robots and are not read.

**Into the store.** A robot motion skips human -> robot retargeting by construction: the sequence's
"joints" are the G1's own keypoints (`g1:<keypoint>`, forward kinematics of the file's trajectory), the
correspondence table `g1` that `retarget run` already has for robot-motion datasets, so it goes through
the same clip cutting, shards, ledger, retarget verdicts (CoM-CoP stability) and catalog as every human
source. The exact trajectory travels beside them as `param_g1_root_pos_w`, `param_g1_root_quat_wxyz`
and `param_g1_joint_pos` (T, 29) [rad] in the clip's `human.npz`. Values are checked with the same
rules as `retarget import` (`retarget.interop.validate_motion`: fps, unit quaternions, joints within the
MJCF limits + 0.5 rad, root within 100 m).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.checks import check_array
from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.resample import interp_linear, interp_quat_wxyz, uniform_index
from ingest.sequence import HumanSequence, SourceRef, TextSpan
from robomirror.errors import SourceError
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.rotations import quat_xyzw_to_wxyz

LAFAN1_FPS = 30.0  # the dataset card and rerun_visualize.py's playback rate
LAFAN1_WIDTH = 7 + len(G1_29DOF_JOINTS)  # xyz + quat xyzw + 29 joints = 36
ROBOT_FOLDERS_NOT_G1 = ("h1", "h1_2")  # the same release's other robots
DOC_SUFFIXES = (".md", ".txt", ".gitattributes", ".json", ".png", ".gif", ".mp4")  # the release's docs and media
KEYPOINT_PREFIX = "g1:"
GATED_MARKERS = (b"version https://git-lfs", b"<!doctype html", b"<html")  # a pointer or an access page, not data


@dataclass(frozen=True)
class G1Trajectory:
    """A G1 motion as a file gives it, in our convention (z-up, metres, wxyz, MuJoCo joint order).

    root_pos_w: (T, 3) [m]; root_quat_wxyz: (T, 4); joint_pos: (T, 29) [rad] in G1_29DOF_JOINTS order.
    """

    fps: float
    root_pos_w: np.ndarray
    root_quat_wxyz: np.ndarray
    joint_pos: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.root_pos_w.shape[0])


def check_not_gated(path: str) -> None:
    """A licence-gated download that was never fetched leaves a Git LFS pointer or an HTML login page
    under the data's name; say so, naming the file, instead of a parse error."""
    try:
        with open(path, "rb") as f:
            head = f.read(256).lstrip().lower()
    except FileNotFoundError as e:
        raise SourceError(Reason.MISSING_FILE, path, "file not found") from e
    if any(head.startswith(m) for m in GATED_MARKERS):
        raise SourceError(Reason.NOT_DOWNLOADED, path,
                          "this is a Git LFS pointer or an HTML page, not the data: the dataset is licence-gated; "
                          "accept its licence and download the files themselves")


def read_lafan1_csv(path: str) -> G1Trajectory:
    """One Unitree LAFAN1 G1 CSV -> trajectory. A file whose rows are not 36 numbers is `bad_columns`."""
    check_not_gated(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(Reason.BAD_CSV, path, f"not a UTF-8 text file: {e}") from e
    rows = [ln for ln in text.splitlines() if ln.strip()]
    if not rows:
        raise SourceError(Reason.EMPTY, path, "no rows")
    widths = sorted({len(r.split(",")) for r in rows})
    if widths != [LAFAN1_WIDTH]:
        raise SourceError(Reason.BAD_COLUMNS, path,
                          f"expected {LAFAN1_WIDTH} columns per row (root xyz, root quaternion xyzw, 29 G1 joints "
                          f"{G1_29DOF_JOINTS[0]}..{G1_29DOF_JOINTS[-1]}), found {widths}; a 23-DoF or H1 file is not "
                          "this layout")
    try:
        data = np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float64)
    except ValueError as e:
        first = rows[0][:60]
        raise SourceError(Reason.BAD_COLUMNS, path,
                          f"expected numbers only (the LAFAN1 G1 CSV has no header); found {first!r}: {e}") from e
    data = check_array(data, path, "rows", (LAFAN1_WIDTH,))
    return G1Trajectory(LAFAN1_FPS, data[:, 0:3], quat_xyzw_to_wxyz(data[:, 3:7]), data[:, 7:])


def discover_g1_csv(root: Path) -> list[SourceRef]:
    """`<root>/g1/*.csv` (the release layout) or `<root>/*.csv` (a folder of re-uploads)."""
    folder = root / "g1" if (root / "g1").is_dir() else root
    refs = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name in ROBOT_FOLDERS_NOT_G1 or p.suffix.lower() in DOC_SUFFIXES:
            continue
        if not p.is_file() or p.suffix.lower() != ".csv":
            refs.append(SourceRef.unusable("g1_csv", p, root, Reason.NOT_A_SOURCE.value,
                                           "expected a .csv file of G1 joint trajectories"))
            continue
        refs.append(SourceRef("g1_csv", folder.name, p.stem, str(root), (("motion", str(p)),), "unitree_lafan1"))
    return refs


def take_text(stem: str) -> list[TextSpan]:
    """LAFAN1 takes are named <action><take>_subject<k> (e.g. dance1_subject2): the action is the only text."""
    action = re.sub(r"\d+$", "", stem.split("_subject")[0]).replace("_", " ").strip()
    return [TextSpan("take_name", action)] if action else []


def read_g1_csv(ref: SourceRef, cfg: IngestConfig) -> HumanSequence:
    path = dict(ref.files)["motion"]
    traj = read_lafan1_csv(path)
    return robot_sequence(ref, traj, take_text(ref.sequence), cfg, path, {"source_layout": "unitree_lafan1_g1_csv"})


def validate_trajectory(traj: G1Trajectory, path: str) -> None:
    """The `retarget import` rules, reported as one typed source error listing every problem."""
    from retarget.interop import InteropError, validate_motion
    from retarget.motion import RobotMotion

    try:
        validate_motion(RobotMotion(traj.fps, G1_29DOF_JOINTS, traj.root_pos_w, traj.root_quat_wxyz, traj.joint_pos),
                        Path(path))
    except InteropError as e:
        reason = Reason.NON_FINITE if "NaN or inf" in str(e) else Reason.BAD_SHAPE
        raise SourceError(reason, path, str(e).split(": ", 1)[-1]) from e


def robot_sequence(ref: SourceRef, traj: G1Trajectory, texts: list[TextSpan], cfg: IngestConfig, path: str,
                   notes: dict) -> HumanSequence:
    """A validated G1 trajectory resampled to the clip rate, as a sequence of G1 keypoints (see module doc)."""
    from retarget.g1 import KEYPOINT_FRAMES
    from retarget.robot import G1

    validate_trajectory(traj, path)
    times = np.arange(traj.n_frames) / traj.fps
    _, idx = uniform_index(times, cfg.fps)
    root = interp_linear(traj.root_pos_w, idx)
    quat = interp_quat_wxyz(traj.root_quat_wxyz / np.linalg.norm(traj.root_quat_wxyz, axis=-1, keepdims=True), idx)
    joints = interp_linear(traj.joint_pos, idx)
    robot = G1("g1_29dof")
    names = tuple(KEYPOINT_FRAMES)
    keypoints = robot.keypoints(robot.qpos(root, quat, joints), names)
    params = {"g1_root_pos_w": root.astype(np.float32), "g1_root_quat_wxyz": quat.astype(np.float32),
              "g1_joint_pos": joints.astype(np.float32)}
    return HumanSequence(ref=ref, view="motion_only", fps=cfg.fps, t0_s=0.0,
                         joint_names=tuple(KEYPOINT_PREFIX + n for n in names),
                         joint_pos_w=keypoints.astype(np.float32), params=params,
                         source_frame_index=idx, texts=texts, video=None, body_model="unitree_g1_29dof",
                         body_source="g1_joint_trajectory", source_fps=traj.fps,
                         notes={**notes, "g1_joint_names": list(G1_29DOF_JOINTS)})
