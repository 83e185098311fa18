"""Reader for Nymeria / NymeriaPlus sequences (egocentric video, SMPL and XSens body, narrations).

One folder per sequence, named `<date>_<session>_<name>_<act>_<uid>`:
```
body/xdata_smpl_neutral.npz   NymeriaPlus SMPL: betas (N,10), body_pose (N,69), global_orient (N,3),
                              transl (N,3) [m], timestamps (N,) [us]
body/xdata.npz                XSens: timestamps_us (N,), frameCount, frameRate (~240),
                              segment_tXYZ (N, 23*3) [m, z-up], segment_qWXYZ (N, 23*4), foot_contacts
narration/motion_narration.csv, atomic_action.csv, activity_summarization.csv
                              start_time, end_time [s] + text columns
recording_head/data/data.vrs  Aria VRS, RGB stream 214-1 (read with projectaria-tools)
recording_head/rgb.mp4        the generated sample's head video instead of VRS, with
                              recording_head/rgb_timestamps_ns.csv (one timestamp_ns per frame)
```
All times are put on one motion clock in seconds (SMPL/XSens timestamps / 1e6).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ingest.body_model import BodyModel
from ingest.checks import check_array, check_increasing, check_same_length, load_npy
from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.motionx import yup_params_to_zup
from ingest.resample import interp_axis_angle, interp_linear, interp_nearest, interp_quat_wxyz, uniform_index
from ingest.sequence import HumanSequence, SourceRef, TextSpan
from ingest.skeletons import XSENS_SEGMENTS
from ingest.video import VideoSource
from robomirror.errors import SourceError
from robomirror.rotations import R_ZUP_FROM_YUP

SEQUENCE_RE = re.compile(r"^(?P<date>\d{8})_(?P<session>s\d+)_(?P<name>.+)_(?P<act>act\d+)_(?P<uid>[0-9a-z]+)$")
NARRATION_FILES = ("motion_narration", "atomic_action", "activity_summarization")
N_SEG = len(XSENS_SEGMENTS)


def discover_nymeria(root: Path) -> list[SourceRef]:
    root = Path(root).resolve()  # recorded paths do not depend on the working directory
    refs = []
    for d in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        m = SEQUENCE_RE.match(d.name)
        if not d.is_dir() or not m:
            continue
        head = d / "recording_head"
        vrs = head / "data" / "data.vrs"
        files = [
            ("smpl", str(d / "body" / "xdata_smpl_neutral.npz")),
            ("xsens", str(d / "body" / "xdata.npz")),
            *[(f"narration:{n}", str(d / "narration" / f"{n}.csv")) for n in NARRATION_FILES],
            ("video", str(vrs if vrs.exists() else head / "rgb.mp4")),
        ]
        if not vrs.exists():
            files.append(("video_timestamps", str(head / "rgb_timestamps_ns.csv")))
        refs.append(SourceRef("nymeria", f"{m['date']}_{m['session']}", d.name, str(root), tuple(files)))
    return refs


def _load_npz(path: str) -> dict[str, np.ndarray]:
    if not Path(path).is_file():
        raise SourceError(Reason.MISSING_FILE, path, "file not found")
    z = load_npy(path)
    try:
        return {k: z[k] for k in z.files}
    except ValueError as e:
        raise SourceError(Reason.BAD_DTYPE, path, f"object array (would need pickle); refused: {e}") from e
    finally:
        z.close()


def _require(d: dict, keys: tuple[str, ...], path: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise SourceError(Reason.BAD_SHAPE, path, f"missing arrays {missing}; found {sorted(d)}")


def read_smpl(path: str) -> dict[str, np.ndarray]:
    """Validated NymeriaPlus SMPL arrays; `time_s` added (timestamps [us] -> [s])."""
    z = _load_npz(path)
    _require(z, ("betas", "body_pose", "global_orient", "transl", "timestamps"), path)
    out = {
        "global_orient": check_array(z["global_orient"], path, "global_orient", (3,)),
        "body_pose": check_array(z["body_pose"], path, "body_pose", (69,)),
        "transl": check_array(z["transl"], path, "transl", (3,)),
        "betas": check_array(z["betas"], path, "betas", (10,)),
        "timestamps": check_array(z["timestamps"], path, "timestamps", (), kind="number"),
    }
    check_same_length(path, **out)
    check_increasing(out["timestamps"], path, "timestamps")
    out["time_s"] = out["timestamps"] * 1e-6
    return out


def read_xsens(path: str) -> dict[str, np.ndarray]:
    """Validated XSens segments: positions (N, 23, 3) [m], quaternions (N, 23, 4) wxyz."""
    z = _load_npz(path)
    _require(z, ("timestamps_us", "segment_tXYZ", "segment_qWXYZ"), path)
    t_us = check_array(z["timestamps_us"], path, "timestamps_us", (), kind="number")
    pos = check_array(z["segment_tXYZ"], path, "segment_tXYZ", (N_SEG * 3,)).reshape(-1, N_SEG, 3)
    quat = check_array(z["segment_qWXYZ"], path, "segment_qWXYZ", (N_SEG * 4,)).reshape(-1, N_SEG, 4)
    out = {"time_s": t_us * 1e-6, "segment_pos_w": pos, "segment_quat_wxyz": quat}
    if "foot_contacts" in z:
        fc = check_array(z["foot_contacts"], path, "foot_contacts", None, kind="number")
        out["foot_contacts"] = fc.reshape(len(fc), -1)
    check_same_length(path, **out)
    check_increasing(out["time_s"], path, "timestamps_us")
    # XSens writes all-zero quaternions for dropped samples: hold the previous valid one.
    norm = np.linalg.norm(quat, axis=-1)
    bad = norm < 0.1
    if bad.any():
        q = quat.copy()
        q[0][bad[0]] = (1.0, 0.0, 0.0, 0.0)
        for f in np.nonzero(bad[1:].any(axis=1))[0] + 1:
            q[f][bad[f]] = q[f - 1][bad[f]]
        out["segment_quat_wxyz"] = q
    out["segment_quat_wxyz"] = out["segment_quat_wxyz"] / np.linalg.norm(out["segment_quat_wxyz"], axis=-1, keepdims=True)
    return out


def read_narrations(paths: dict[str, str], offset_s: float) -> list[TextSpan]:
    texts: list[TextSpan] = []
    present = 0
    for stem in NARRATION_FILES:
        path = paths[f"narration:{stem}"]
        if not Path(path).is_file():
            continue
        present += 1
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
                header = rows[0].keys() if rows else []
        except (UnicodeDecodeError, csv.Error) as e:
            raise SourceError(Reason.BAD_CSV, path, f"unreadable CSV: {e}") from e
        if rows and not {"start_time", "end_time"} <= set(header):
            raise SourceError(Reason.BAD_CSV, path,
                              f"expected columns start_time, end_time and text columns; found {list(header)}")
        text_cols = [c for c in header if c not in ("start_time", "end_time") and c is not None]
        for i, row in enumerate(rows):
            if None in row:
                raise SourceError(Reason.BAD_CSV, path, f"row {i + 2} has more fields than the header")
            try:
                start, end = float(row["start_time"]), float(row["end_time"])
            except (TypeError, ValueError) as e:
                raise SourceError(Reason.BAD_CSV, path, f"row {i + 2}: start/end time not numbers: {e}") from e
            if not (np.isfinite(start) and np.isfinite(end) and end >= start):
                raise SourceError(Reason.BAD_CSV, path, f"row {i + 2}: need finite start <= end, got {start}, {end}")
            for c in text_cols:
                if (row.get(c) or "").strip():
                    kind = stem if len(text_cols) == 1 else f"{stem}:{c}"
                    texts.append(TextSpan(kind, row[c].strip(), start + offset_s, end + offset_s))
    if present == 0:
        raise SourceError(Reason.MISSING_TEXT, str(Path(paths["narration:motion_narration"]).parent),
                          f"none of the narration files {[f'{n}.csv' for n in NARRATION_FILES]} exists")
    return texts


def _video_source(files: dict[str, str]) -> VideoSource:
    path = files["video"]
    if not Path(path).is_file():
        raise SourceError(Reason.MISSING_FILE, path, "no head video (recording_head/data/data.vrs or rgb.mp4)")
    if path.endswith(".vrs"):
        return VideoSource(path, "vrs")
    ts_path = files["video_timestamps"]
    try:
        with open(ts_path, newline="") as f:
            rows = list(csv.DictReader(f))
        ts = np.array([float(r["timestamp_ns"]) for r in rows]) * 1e-9
    except FileNotFoundError as e:
        raise SourceError(Reason.MISSING_FILE, ts_path, "rgb.mp4 needs its frame timestamps") from e
    except (KeyError, ValueError, TypeError, csv.Error) as e:
        raise SourceError(Reason.BAD_CSV, ts_path, f"expected one column timestamp_ns of numbers: {e}") from e
    if len(ts) == 0:
        raise SourceError(Reason.EMPTY, ts_path, "no frame timestamps")
    check_increasing(ts, ts_path, "timestamp_ns")
    return VideoSource(path, "mp4", timestamps_s=tuple(ts.tolist()))


def detect_up_axis(joints: np.ndarray, names: tuple[str, ...]) -> str:
    """'y' or 'z': the axis along which the head stands highest above the ankles."""
    head = joints[:, names.index("head")]
    feet = 0.5 * (joints[:, names.index("left_ankle")] + joints[:, names.index("right_ankle")])
    up = np.mean(head - feet, axis=0)
    return "y" if abs(up[1]) > abs(up[2]) else "z"


def read_nymeria(ref: SourceRef, body: BodyModel, cfg: IngestConfig) -> HumanSequence:
    files = dict(ref.files)
    texts = read_narrations(files, cfg.narration_offset_s)
    video = _video_source(files)
    has_smpl, has_xsens = Path(files["smpl"]).is_file(), Path(files["xsens"]).is_file()
    source = cfg.nymeria_body_source
    if source == "smpl" and not has_smpl and has_xsens:
        source = "xsens"  # fall back to the other body source, and record it
    if source == "smpl":
        return _from_smpl(ref, files, body, cfg, texts, video, has_xsens)
    if not has_xsens:
        raise SourceError(Reason.MISSING_FILE, files["xsens"], "no body motion (xdata.npz or xdata_smpl_neutral.npz)")
    return _from_xsens(ref, files, texts, video, cfg)


def _xsens_extras(xs: dict[str, np.ndarray], target_s: np.ndarray) -> dict[str, np.ndarray]:
    idx = np.interp(target_s, xs["time_s"], np.arange(len(xs["time_s"]), dtype=np.float64))
    out = {
        "xsens_segment_pos_w": interp_linear(xs["segment_pos_w"], idx),
        "xsens_segment_quat_wxyz": interp_quat_wxyz(xs["segment_quat_wxyz"], idx),
    }
    if "foot_contacts" in xs:
        out["xsens_foot_contacts"] = interp_nearest(xs["foot_contacts"], idx)
    return out


def _from_smpl(ref, files, body, cfg, texts, video, has_xsens) -> HumanSequence:
    path = files["smpl"]
    s = read_smpl(path)
    target_s, idx = uniform_index(s["time_s"], cfg.fps)
    p = {
        "root_orient": interp_axis_angle(s["global_orient"], idx),
        "pose_body": interp_axis_angle(s["body_pose"], idx),
        "trans": interp_linear(s["transl"], idx),
        "betas": interp_linear(s["betas"], idx),
    }
    try:
        joints = body.joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"])
        zero = np.zeros((len(idx), 3))
        pelvis_rest = body.joints(zero, np.zeros((len(idx), 69)), zero, p["betas"])[:, 0]
    except Exception as e:
        raise SourceError(Reason.BAD_BODY, path, f"{body.name} failed: {type(e).__name__}: {e}") from e
    up = cfg.nymeria_up_axis if cfg.nymeria_up_axis != "auto" else detect_up_axis(joints, tuple(body.joint_names))
    if up == "y":
        joints = joints @ R_ZUP_FROM_YUP.T
        p = yup_params_to_zup(p, pelvis_rest)
    if has_xsens:
        p.update(_xsens_extras(read_xsens(files["xsens"]), target_s))
    src_fps = float(1.0 / np.median(np.diff(s["time_s"])))
    return HumanSequence(
        ref=ref, view="egocentric", fps=cfg.fps, t0_s=float(target_s[0]),
        joint_names=tuple(body.joint_names), joint_pos_w=joints.astype(np.float32),
        params={k: v.astype(np.float32) for k, v in p.items()}, source_frame_index=idx,
        texts=texts, video=video, body_model=body.name, body_source="smpl_neutral",
        source_fps=src_fps, notes={"source_up_axis": up},
    )


def _from_xsens(ref, files, texts, video, cfg) -> HumanSequence:
    xs = read_xsens(files["xsens"])
    target_s, idx = uniform_index(xs["time_s"], cfg.fps)
    extras = _xsens_extras(xs, target_s)
    return HumanSequence(
        ref=ref, view="egocentric", fps=cfg.fps, t0_s=float(target_s[0]),
        joint_names=XSENS_SEGMENTS, joint_pos_w=extras["xsens_segment_pos_w"].astype(np.float32),
        params={k: v.astype(np.float32) for k, v in extras.items()}, source_frame_index=idx,
        texts=texts, video=video, body_model="xsens-mvn", body_source="xsens",
        source_fps=float(1.0 / np.median(np.diff(xs["time_s"]))), notes={"source_up_axis": "z"},
    )
