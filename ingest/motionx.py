"""Reader for Motion-X (SMPL-X, 322 columns per frame, y-up), v1 and Motion-X++.

Layouts (IDEA-Research/Motion-X README, "Dataset Download"; Motion-X++ release notes), both read,
detected per root (a root may hold both):
```
motionx_v1:  <root>/motion_data/smplx_322/<subset>/<name>.npy             float32 (T, 322)
             <root>/texts/semantic_labels/<subset>/<name>.txt             one label per line
             (no videos: "We do not distribute the original RGB videos"; the mocap subsets
             humanml/AMASS, EgoBody and GRAB never had any. A video a user adds under
             <root>/video/<subset>/<name>.mp4 is used.)
motionx++:   <root>/motion/motion_generation/smplx322/<subset>/<name>.npy
             <root>/text/semantic_label/<subset>/<name>.txt
             <root>/video/<subset>/<name>.mp4                             third-person video
```
`<name>` may contain sub-folders. A sequence without a video is ingested motion-only
(view "motion_only", no video member). Quirks handled here, each from a public source:
- `semantic_labels/humanml` is HumanML3D's text folder as-is: `caption#tokens#from#to` per line,
  from/to in seconds, 0.0 = the whole clip; we keep each caption with its span, not the POS tags.
- Frame rate per subset (`SUBSET_FPS`): humanml was downsampled by `int(fps / 30)` from its AMASS
  source (`mocap-dataset-process/humanml.py` `get_smplx_322`), so a 100 Hz source is 33.3 fps; a
  per-sequence rate comes from `<root>/sequence_fps.csv` (subset,name,fps) when given.
- Up axis per sequence (`ingest/up_axis.py`), one rotation for the whole sequence: the subset's
  documented convention (`SUBSET_UP`) checked against the floor the body rests on, its ballistic
  arcs and the direction it stands in; a sequence whose axis differs from its subset's is logged,
  one whose evidence contradicts itself or whose body turns over between two frames is ledgered.
  The floor is then put at z = 0.
- Gender is not stored in the 322 columns: the neutral model is used, and the meta says so.
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import numpy as np

from ingest.body_model import BodyModel
from ingest.checks import check_array, load_npy
from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.resample import interp_axis_angle, interp_linear, uniform_index
from ingest.sequence import HumanSequence, SourceRef, TextSpan
from ingest.up_axis import decide_up_axis
from ingest.video import VideoSource
from robomirror.errors import ConfigError, SourceError
from robomirror.rotations import R_ZUP_FROM_YUP, axis_angle_to_matrix, matrix_to_axis_angle

MOTIONX_WIDTH = 322
# Column slices of one smplx_322 frame, as documented by Motion-X.
MOTIONX_COLUMNS: dict[str, tuple[int, int]] = {
    "root_orient": (0, 3), "pose_body": (3, 66), "pose_hand": (66, 156), "pose_jaw": (156, 159),
    "face_expr": (159, 209), "face_shape": (209, 309), "trans": (309, 312), "betas": (312, 322),
}
# layout -> (motion dir, text dir, video dir), relative to the root
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "motionx_v1": ("motion_data/smplx_322", "texts/semantic_labels", "video"),
    "motionx++": ("motion/motion_generation/smplx322", "text/semantic_label", "video"),
}
# subset -> (fps, source). None: per sequence (sequence_fps.csv), defaulting to 30.
SUBSET_FPS: dict[str, tuple[float | None, str]] = {
    "humanml": (None, "AMASS rate / int(rate / 30): 30 for 60/120 Hz, 33.3 for 100 Hz (mocap-dataset-process/humanml.py)"),
    "GRAB": (30.0, "120 Hz / int(120 / 30) (mocap-dataset-process/grab.py)"),
    "EgoBody": (30.0, "30 Hz Kinect capture (mocap-dataset-process/egobody.py)"),
}
DEFAULT_FPS = (30.0, "Motion-X README: 'All motions have been unified in 30 fps'")
FPS_TABLE = "sequence_fps.csv"
# subset -> (documented up axis or None, source). Motion-X's own loaders read every subset y-up: the
# tomato pipeline (tomato_represenation/raw_pose_processing.py -> motion_representation.py, HumanML3D's
# processing: the floor is the minimum y) runs on all of smplx_322 alike, and the mocap conversions
# rotate their z-up sources to y-up (mocap-dataset-process/humanml.py `compute_canonical_transform`).
# GRAB and EgoBody state none we can rely on: grab.py rotates global_orient but leaves GRAB's z-up
# transl as it was, and EgoBody sequences are partly flipped; their axis comes from the evidence alone.
_YUP_SOURCE = "Motion-X tomato_represenation (HumanML3D processing: floor = min y) reads every subset y-up"
SUBSET_UP: dict[str, tuple[str | None, str]] = {
    **{s: ("+y", _YUP_SOURCE) for s in ("humanml", "aist", "kungfu", "dance", "perform", "idea400", "game_motion",
                                        "animation", "fitness", "haa500", "humman", "music")},
    "GRAB": (None, "mocap-dataset-process/grab.py rotates global_orient only; transl stays z-up"),
    "EgoBody": (None, "mocap-dataset-process/egobody.py: some sequences flipped"),
}


def detect_layouts(root: Path) -> list[str]:
    return [name for name, (motion, _, _) in LAYOUTS.items() if (Path(root) / motion).is_dir()]


def discover_motionx(root: Path) -> list[SourceRef]:
    root = Path(root).resolve()  # recorded paths do not depend on the working directory
    layouts = detect_layouts(root)
    if not layouts:
        raise ConfigError(f"{root}: not a Motion-X root; expected one of "
                          + ", ".join(f"{m}/ ({k})" for k, (m, _, _) in LAYOUTS.items()))
    refs = []
    for layout in layouts:
        motion_rel, text_rel, video_rel = LAYOUTS[layout]
        motion_dir = root / motion_rel
        for npy in sorted(motion_dir.rglob("*.npy")):
            rel = npy.relative_to(motion_dir)
            if len(rel.parts) < 2:
                refs.append(SourceRef.unusable("motionx", npy, root, Reason.NOT_A_SOURCE.value,
                                               f"a motion file directly under {motion_rel}/; expected "
                                               f"{motion_rel}/<subset>/<name>.npy"))
                continue
            subset, name = rel.parts[0], str(Path(*rel.parts[1:]).with_suffix(""))
            files = (
                ("motion", str(npy)),
                ("text", str(root / text_rel / subset / f"{name}.txt")),
                ("video", str(root / video_rel / subset / f"{name}.mp4")),
                ("fps_table", str(root / FPS_TABLE)),
            )
            odd = not_regular([p for _, p in files])
            if odd:
                refs.append(SourceRef.unusable("motionx", odd[0], root, Reason.NOT_A_SOURCE.value, odd[1]))
                continue
            refs.append(SourceRef("motionx", subset, name, str(root), files, layout))
    return refs


def not_regular(paths: list[str]) -> tuple[str, str] | None:
    """(path, why) of the first path that exists but is not a regular file (a FIFO would hang a read)."""
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) \
                else "a device or socket"
            return p, f"{kind}, not a regular file; refused without opening it"
    return None


def split_columns(motion: np.ndarray) -> dict[str, np.ndarray]:
    """(T, 322) -> named parameter arrays (views, source frame)."""
    return {k: motion[:, a:b] for k, (a, b) in MOTIONX_COLUMNS.items()}


def rotate_params(params: dict[str, np.ndarray], pelvis_rest: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    """Rotate root orientation and translation by the fixed rotation r (3, 3).

    The body model rotates about the pelvis rest position J0 and adds `trans`, so
    `trans' = r (trans + J0) - J0` keeps every joint at `r @ joint`.
    pelvis_rest: (T, 3) J0 of the body model for each frame's betas.
    """
    out = dict(params)
    out["root_orient"] = matrix_to_axis_angle(r @ axis_angle_to_matrix(params["root_orient"]))
    out["trans"] = (params["trans"] + pelvis_rest) @ r.T - pelvis_rest
    return out


def yup_params_to_zup(params: dict[str, np.ndarray], pelvis_rest: np.ndarray) -> dict[str, np.ndarray]:
    return rotate_params(params, pelvis_rest, R_ZUP_FROM_YUP)


def zup_rotation(up: str) -> np.ndarray:
    """A proper rotation taking the source axis `up` (e.g. "+y") to +z; +y uses R_ZUP_FROM_YUP."""
    if up == "+y":
        return R_ZUP_FROM_YUP
    if up == "-y":
        return R_ZUP_FROM_YUP @ np.diag([1.0, -1.0, -1.0])  # half a turn about x first
    if up == "+z":
        return np.eye(3)
    if up == "-z":
        return np.diag([1.0, -1.0, -1.0])
    if up == "+x":
        return np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    return np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


def parse_label_line(line: str) -> TextSpan | None:
    """A semantic label; HumanML3D lines `caption#tokens#from#to` keep caption and span (0 = whole)."""
    line = line.strip()
    if not line:
        return None
    parts = line.split("#")
    if len(parts) == 4:
        caption = parts[0].strip()
        try:
            t0, t1 = float(parts[2]), float(parts[3])
        except ValueError:
            t0 = t1 = float("nan")
        if not caption:
            return None
        if not (np.isfinite(t0) and np.isfinite(t1)) or (t0 == 0.0 and t1 == 0.0) or t1 <= t0:
            return TextSpan("semantic_label", caption)
        return TextSpan("semantic_label", caption, t0, t1)
    return TextSpan("semantic_label", line)


def read_texts(path: str) -> list[TextSpan]:
    p = Path(path)
    if not p.is_file():
        raise SourceError(Reason.MISSING_TEXT, path, "no semantic label file for this motion")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise SourceError(Reason.MISSING_TEXT, path, f"label file is not UTF-8: {e}") from e
    texts = [t for t in (parse_label_line(ln) for ln in lines) if t is not None]
    if not texts:
        raise SourceError(Reason.MISSING_TEXT, path, "label file is empty")
    return texts


def sequence_fps(ref: SourceRef) -> tuple[float, str]:
    """(source frame rate [Hz], where it came from)."""
    table = dict(ref.files).get("fps_table")
    if table and Path(table).is_file():
        try:
            with open(table, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("subset") == ref.subset and row.get("name") == ref.sequence:
                        fps = float(row["fps"])
                        if not (np.isfinite(fps) and fps > 0):
                            raise ValueError(f"fps must be > 0, got {row['fps']!r}")
                        return fps, f"{FPS_TABLE}"
        except (KeyError, ValueError, TypeError, csv.Error) as e:
            raise SourceError(Reason.BAD_CSV, table, f"expected columns subset,name,fps with fps > 0: {e}") from e
    fps, source = SUBSET_FPS.get(ref.subset, DEFAULT_FPS)
    if fps is None:
        return 30.0, f"assumed 30 (no {FPS_TABLE} row; {source})"
    return fps, source


def read_motionx(ref: SourceRef, body: BodyModel, cfg: IngestConfig | None = None) -> HumanSequence:
    cfg = cfg or IngestConfig()
    files = dict(ref.files)
    path = files["motion"]
    motion = check_array(load_npy(path), path, "smplx_322", width=(MOTIONX_WIDTH,))
    texts = read_texts(files["text"])
    src_fps, fps_source = sequence_fps(ref)
    p = split_columns(motion)
    try:
        joints_src = body.joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"],
                                 hand_pose=p["pose_hand"], jaw_pose=p["pose_jaw"])
        t = len(motion)
        zero = np.zeros((t, 3))
        pelvis_rest = body.joints(zero, np.zeros((t, 63)), zero, p["betas"])[:, 0]
    except Exception as e:  # the body model is a third-party boundary
        raise SourceError(Reason.BAD_BODY, path, f"{body.name} failed: {type(e).__name__}: {e}") from e
    subset_axis = SUBSET_UP.get(ref.subset, (None, ""))[0]
    decision = decide_up_axis(joints_src, tuple(body.joint_names), src_fps, subset_axis, path)
    r = zup_rotation(decision.axis)
    params = rotate_params(p, pelvis_rest, r)
    params["trans"] = params["trans"] - [0.0, 0.0, decision.floor_m]  # the floor it rests on at z = 0
    joints = joints_src @ r.T - [0.0, 0.0, decision.floor_m]
    # resample to the clip rate on the sequence's own clock (humanml may be 33.3 fps); joints come
    # from the resampled parameters, so parameters and joints always agree
    target_s, idx = uniform_index(np.arange(t) / src_fps, cfg.fps)
    if len(idx) != t or not np.allclose(idx, np.arange(t)):
        rot_keys = ("root_orient", "pose_body", "pose_hand", "pose_jaw")
        params = {k: (interp_axis_angle(v, idx) if k in rot_keys else interp_linear(v, idx)) for k, v in params.items()}
        joints = body.joints(params["root_orient"], params["pose_body"], params["trans"], params["betas"],
                             hand_pose=params["pose_hand"], jaw_pose=params["pose_jaw"])
    video = VideoSource(files["video"], "mp4") if Path(files["video"]).is_file() else None
    return HumanSequence(
        ref=ref, view="third_person" if video else "motion_only", fps=cfg.fps, t0_s=0.0,
        joint_names=tuple(body.joint_names),
        joint_pos_w=joints.astype(np.float32),
        params={k: v.astype(np.float32) for k, v in params.items()},
        source_frame_index=idx, texts=texts, video=video,
        body_model=body.name, body_source="smplx_322", source_fps=src_fps,
        notes={"layout": ref.layout, **decision.notes(), "floor_shift_m": round(-decision.floor_m, 4),
               **({"up_axis_warning": f"up axis {decision.axis} differs from the subset's {subset_axis}"}
                  if decision.differs_from_subset else {}),
               "source_fps_from": fps_source,
               "gender": "not stored in smplx_322 (Motion-X keeps no gender column); neutral body model used",
               "video": "present" if video else "none: Motion-X v1 and the mocap subsets ship no RGB video"},
    )
