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
recording_head/data/motion.vrs  Aria IMU VRS (NymeriaPlus group `timesync_and_imu`): the head clock only
recording_head/rgb.mp4        the generated sample's head video instead of VRS, with
                              recording_head/rgb_timestamps_ns.csv (capture_timestamp_ns = device
                              time and timecode_ns per frame: both clocks, as the VRS gives them);
                              recording_head/motion_timesync_ns.csv stands in for motion.vrs
```
Nymeria is downloaded by data group, so any of these may be absent. A sequence is built from what is
there (`read_nymeria`): the body is required (missing or broken: a ledger row); narrations need a
head clock (data.vrs or motion.vrs) to be placed on the motion clock, otherwise the clips carry no
text and the meta says why; the head video gives egocentric clips where it covers the body, and
clips outside it are motion-only with the reason recorded per clip (`ingest.clips`).
All times are put on the TIME_CODE clock in seconds (the body files' clock; see
`ingest.nymeria_clock` for the sources): RGB frame times and narration times are converted from the
head device clock per recording. Bad timestamp steps and dropped quaternions are repaired as the
official body loader repairs them (`ingest.timestamps`) and each repair is recorded in the meta.
The SMPL up axis is y, rotated to z-up by the matrix of the official `smpl_provider.py`
([[1,0,0],[0,0,-1],[0,1,0]] = our R_ZUP_FROM_YUP); a head-above-feet check only warns.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

from ingest.body_model import BodyModel
from ingest.checks import check_array, check_increasing, check_same_length, load_npy
from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.motionx import not_regular, yup_params_to_zup
from ingest.nymeria_clock import HeadClock, read_head_clock
from ingest.resample import interp_axis_angle, interp_linear, interp_nearest, interp_quat_wxyz, uniform_index
from ingest.sequence import HumanSequence, SourceRef, TextSpan
from ingest.skeletons import XSENS_SEGMENTS
from ingest.timestamps import nominal_step_us, repair_quaternions_wxyz, repair_timestamps_us
from ingest.video import VideoSource
from robomirror.errors import ConfigError, SourceError
from robomirror.rotations import R_ZUP_FROM_YUP

SEQUENCE_RE = re.compile(r"^(?P<date>\d{8})_(?P<session>s\d+)_(?P<name>.+)_(?P<act>act\d+)_(?P<uid>[0-9a-z]+)$")
NARRATION_FILES = ("motion_narration", "atomic_action", "activity_summarization")
# Text columns of the real narration CSVs -> the kind we store them under. motion_narration.csv has
# four (posture, hands/arms, legs/feet, focus of attention); each is kept as its own text.
NARRATION_COLUMNS = {
    "Describe my body posture": "posture",
    "Describe my hands/arms motion": "hands_arms",
    "Describe my legs/feet motion": "legs_feet",
    "Describe my focus attention": "focus_attention",
    "Describe my atomic actions": "atomic_action",
    "Describe my activity": "activity",
}
N_SEG = len(XSENS_SEGMENTS)
XSENS_RATE_HZ = 240.0  # body_motion_provider.py `_dt_nominal` = 1e6 / 240, when xdata.npz has no frameRate


def discover_nymeria(root: Path) -> list[SourceRef]:
    root = Path(root).resolve()  # recorded paths do not depend on the working directory
    if not root.is_dir():
        raise ConfigError(f"{root}: Nymeria root not found (a folder of <date>_<session>_<name>_<act>_<uid> "
                          "sequence folders); nothing was changed")
    refs = []
    for d in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        if d.name.startswith("."):  # hidden entries (the official downloader's .download_logs/) are not data
            continue
        m = SEQUENCE_RE.match(d.name)
        if not d.is_dir() or not m:
            what = "a folder" if d.is_dir() else "a file"
            refs.append(SourceRef.unusable("nymeria", d, root, Reason.NOT_A_SOURCE.value,
                                           f"{what} whose name does not parse as a Nymeria sequence "
                                           f"<date>_<session>_<name>_<act>_<uid> (e.g. 20230607_s0_james_johnson_act0_e72nhq)"))
            continue
        head = d / "recording_head"
        vrs, motion_vrs = head / "data" / "data.vrs", head / "data" / "motion.vrs"
        files = [
            ("smpl", str(d / "body" / "xdata_smpl_neutral.npz")),
            ("xsens", str(d / "body" / "xdata.npz")),
            *[(f"narration:{n}", str(d / "narration" / f"{n}.csv")) for n in NARRATION_FILES],
            ("video", str(vrs if vrs.exists() else head / "rgb.mp4")),
        ]
        if not vrs.exists():
            files.append(("video_timestamps", str(head / "rgb_timestamps_ns.csv")))
        files.append(("timesync", str(motion_vrs if motion_vrs.exists() else head / "motion_timesync_ns.csv")))
        odd = not_regular([p for _, p in files])
        if odd:
            refs.append(SourceRef.unusable("nymeria", odd[0], root, Reason.NOT_A_SOURCE.value, odd[1]))
            continue
        refs.append(SourceRef("nymeria", f"{m['date']}_{m['session']}", d.name, str(root), tuple(files),
                              "nymeria_vrs" if vrs.exists() else "nymeria_sample_mp4"))
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
    t_us, n_fixed = repair_timestamps_us(out["timestamps"], nominal_step_us(out["timestamps"]), path, "timestamps")
    check_increasing(t_us, path, "timestamps")
    out["time_s"] = t_us * 1e-6
    out["repaired_steps"] = np.array(n_fixed)
    return out


def _header_scalar(z: dict, key: str, path: str) -> float | None:
    if key not in z:
        return None
    v = np.asarray(z[key])
    if v.size != 1 or v.dtype.kind not in "fiu" or not np.isfinite(v.astype(np.float64)).all():
        raise SourceError(Reason.HEADER_MISMATCH, path, f"{key}: expected one finite number, found {v.dtype} {v.shape}")
    return float(v.reshape(()))


def xsens_header(z: dict, path: str) -> dict[str, float]:
    """xdata.npz's own frameRate [Hz], frameCount and segmentCount, checked against its arrays.

    The official loader takes frameRate and frameCount as the truth (`body_motion_provider.py`
    asserts the momentum motion against them). A file whose header disagrees with its data is
    refused (`header_mismatch`); a key that is absent is assumed (240 Hz, N frames, 23 segments)
    and the meta says so."""
    rate, count, segs = (_header_scalar(z, k, path) for k in ("frameRate", "frameCount", "segmentCount"))
    n = len(np.asarray(z["timestamps_us"]))
    problems = []
    if segs is not None and segs != N_SEG:
        problems.append(f"segmentCount is {segs:g}; the XSens skeleton of Nymeria has {N_SEG} segments")
    if count is not None and count != n:
        problems.append(f"frameCount is {count:g} but timestamps_us has {n} frames")
    if rate is not None:
        t = np.asarray(z["timestamps_us"], dtype=np.float64)
        if rate <= 0:
            problems.append(f"frameRate is {rate:g} Hz; expected > 0")
        elif n > 1 and t[-1] > t[0]:
            measured = (n - 1) / ((t[-1] - t[0]) * 1e-6)  # over the whole span, not the median of us steps
            if abs(measured - rate) > 0.01 * rate:
                problems.append(f"frameRate is {rate:g} Hz but timestamps_us run at {measured:.3f} Hz")
    if problems:
        raise SourceError(Reason.HEADER_MISMATCH, path, "xdata.npz header disagrees with its data: " + "; ".join(problems))
    return {"frame_rate_hz": rate if rate is not None else XSENS_RATE_HZ, "frame_count": n,
            "segment_count": N_SEG, "assumed": [k for k, v in (("frameRate", rate), ("frameCount", count),
                                                                ("segmentCount", segs)) if v is None]}


def read_xsens(path: str) -> dict[str, np.ndarray]:
    """Validated XSens segments: positions (N, 23, 3) [m], quaternions (N, 23, 4) wxyz; `header`
    holds the file's checked frameRate / frameCount / segmentCount."""
    z = _load_npz(path)
    _require(z, ("timestamps_us", "segment_tXYZ", "segment_qWXYZ"), path)
    t_us = check_array(z["timestamps_us"], path, "timestamps_us", (), kind="number")
    header = xsens_header(z, path)
    pos = check_array(z["segment_tXYZ"], path, "segment_tXYZ", (N_SEG * 3,)).reshape(-1, N_SEG, 3)
    quat = check_array(z["segment_qWXYZ"], path, "segment_qWXYZ", (N_SEG * 4,)).reshape(-1, N_SEG, 4)
    out = {"time_s": t_us, "segment_pos_w": pos, "segment_quat_wxyz": quat}
    if "foot_contacts" in z:
        fc = check_array(z["foot_contacts"], path, "foot_contacts", None, kind="number")
        out["foot_contacts"] = fc.reshape(len(fc), -1)
    check_same_length(path, **out)
    t_fixed, n_steps = repair_timestamps_us(t_us, 1e6 / header["frame_rate_hz"], path, "timestamps_us")
    check_increasing(t_fixed, path, "timestamps_us")
    out["time_s"] = t_fixed * 1e-6
    out["segment_quat_wxyz"], n_quat = repair_quaternions_wxyz(quat)
    out["repaired_steps"], out["repaired_quaternions"] = np.array(n_steps), np.array(n_quat)
    out["header"] = header  # type: ignore[assignment]
    return out


def narration_kind(stem: str, column: str, n_text_columns: int) -> str:
    if stem == "motion_narration" or n_text_columns > 1:
        return f"{stem}:{NARRATION_COLUMNS.get(column, column)}"
    return stem


def is_text_column(column: str) -> bool:
    """The narration CSVs' text columns are the "Describe my ..." prompts; the other columns
    (request_id, gaia_id, annotator, creation_time, ...) are bookkeeping, not text about the motion."""
    return column in NARRATION_COLUMNS or column.startswith("Describe my")


def narration_files(paths: dict[str, str]) -> list[str]:
    return [paths[f"narration:{n}"] for n in NARRATION_FILES if Path(paths[f"narration:{n}"]).is_file()]


def read_narrations(paths: dict[str, str], clock: HeadClock | None) -> list[TextSpan]:
    """Every text of every narration CSV with its span, converted from head device seconds to the
    time-code clock through `clock` (None: times as written, for tests of the raw files)."""
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
        text_cols = [c for c in header if c is not None and is_text_column(c)]
        if rows and not text_cols:
            raise SourceError(Reason.BAD_CSV, path, f"no text column (\"Describe my ...\"); found {list(header)}")
        for i, row in enumerate(rows):
            if None in row:
                raise SourceError(Reason.BAD_CSV, path, f"row {i + 2} has more fields than the header")
            try:
                start, end = float(row["start_time"]), float(row["end_time"])
            except (TypeError, ValueError) as e:
                raise SourceError(Reason.BAD_CSV, path, f"row {i + 2}: start/end time not numbers: {e}") from e
            if not (np.isfinite(start) and np.isfinite(end) and end >= start):
                raise SourceError(Reason.BAD_CSV, path, f"row {i + 2}: need finite start <= end, got {start}, {end}")
            if clock is not None:
                start, end = (float(x) for x in clock.to_timecode_s(np.array([start, end])))
            for c in text_cols:
                if (row.get(c) or "").strip():
                    texts.append(TextSpan(narration_kind(stem, c, len(text_cols)), row[c].strip(), start, end))
    if present == 0:
        raise SourceError(Reason.MISSING_TEXT, str(Path(paths["narration:motion_narration"]).parent),
                          f"none of the narration files {[f'{n}.csv' for n in NARRATION_FILES]} exists")
    return texts


def head_clock_file(files: dict[str, str]) -> tuple[str, str] | None:
    """(kind, path) of the head file that gives this download's device -> time-code map: data.vrs
    (every RGB frame) or the sample's two-clock CSV beside rgb.mp4, else motion.vrs (NymeriaPlus
    `timesync_and_imu`) or its sample stand-in; None when the download has none."""
    video = files["video"]
    if Path(video).is_file():
        return ("rgb_vrs", video) if video.endswith(".vrs") else ("standin", files["video_timestamps"])
    sync = files.get("timesync")
    if sync and Path(sync).is_file():
        return ("timesync_vrs", sync) if sync.endswith(".vrs") else ("standin", sync)
    return None


def head_clock(files: dict[str, str]) -> HeadClock | None:
    """The head recording's device -> time-code map, or None (narrations then cannot be placed)."""
    found = head_clock_file(files)
    return read_head_clock(found[1], found[0]) if found is not None else None


def _video_source(files: dict[str, str], clock: HeadClock) -> VideoSource:
    """RGB frames timed on the time-code clock (their capture_timestamp_ns is device time)."""
    kind = "vrs" if files["video"].endswith(".vrs") else "mp4"
    return VideoSource(files["video"], kind, timestamps_s=tuple(clock.frame_timecode_s.tolist()))


def detect_up_axis(joints: np.ndarray, names: tuple[str, ...]) -> str:
    """'y' or 'z': the axis along which the head stands highest above the ankles."""
    head = joints[:, names.index("head")]
    feet = 0.5 * (joints[:, names.index("left_ankle")] + joints[:, names.index("right_ankle")])
    up = np.mean(head - feet, axis=0)
    return "y" if abs(up[1]) > abs(up[2]) else "z"


def read_nymeria(ref: SourceRef, body: BodyModel, cfg: IngestConfig) -> HumanSequence:
    """One sequence from whatever this download holds (see the module docstring). The body is
    read first: without a usable body there is nothing to ingest (a ledger row)."""
    files = dict(ref.files)
    has_smpl, has_xsens = Path(files["smpl"]).is_file(), Path(files["xsens"]).is_file()
    if not has_smpl and not has_xsens:
        raise SourceError(Reason.MISSING_FILE, str(Path(files["smpl"]).parent),
                          "no body motion: body/xdata_smpl_neutral.npz (NymeriaPlus group body_processed) or "
                          "body/xdata.npz (body_raw / body_motion) is needed; narration and video alone give no clips")
    source = cfg.nymeria_body_source
    if source == "smpl" and not has_smpl:
        source = "xsens"  # fall back to the other body source, and record it
    if source == "xsens" and not has_xsens:
        raise SourceError(Reason.MISSING_FILE, files["xsens"], "--nymeria-body xsens needs body/xdata.npz")
    seq = _from_smpl(ref, files, body, cfg, has_xsens) if source == "smpl" else _from_xsens(ref, files, cfg)

    clock = head_clock(files)
    present = narration_files(files)
    modalities = {"body": seq.body_source, "text": "none", "video": "none"}
    if present and clock is None:
        modalities["text"] = ("narration present but not placed: its times are on the head device clock and "
                              "this download has no head clock (recording_head/data/motion.vrs, NymeriaPlus group "
                              "timesync_and_imu, or recording_head/data/data.vrs)")
    elif present:
        seq.texts = read_narrations(files, clock)
        modalities["text"] = "narration"
    if clock is not None and Path(files["video"]).is_file():
        seq.video = _video_source(files, clock)
        seq.view = "egocentric"
        seq.video_span_s = (float(clock.frame_timecode_s[0]), float(clock.frame_timecode_s[-1]))
        modalities["video"] = "head_rgb"
    else:
        seq.view = "motion_only"
    seq.notes["modalities"] = modalities
    if clock is not None:
        seq.notes.update({"clock": "time_code", "head_clock_file": Path(head_clock_file(files)[1]).name,  # type: ignore[index]
                          "head_device_to_timecode_offset_s": round(clock.offset_s, 9)})
    if seq.video is not None:
        seq.notes["video_fps"] = (round(float(1e9 / np.median(np.diff(clock.timecode_ns))), 3)
                                  if len(clock.timecode_ns) > 1 else None)
    return seq


def _xsens_extras(xs: dict[str, np.ndarray], target_s: np.ndarray) -> dict[str, np.ndarray]:
    idx = np.interp(target_s, xs["time_s"], np.arange(len(xs["time_s"]), dtype=np.float64))
    out = {
        "xsens_segment_pos_w": interp_linear(xs["segment_pos_w"], idx),
        "xsens_segment_quat_wxyz": interp_quat_wxyz(xs["segment_quat_wxyz"], idx),
    }
    if "foot_contacts" in xs:
        out["xsens_foot_contacts"] = interp_nearest(xs["foot_contacts"], idx)
    return out


def _from_smpl(ref, files, body, cfg, has_xsens) -> HumanSequence:
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
    up = cfg.nymeria_up_axis
    notes: dict = {"source_up_axis": up, "repairs": {"smpl_timestamp_steps": int(s["repaired_steps"])}}
    seen = detect_up_axis(joints, tuple(body.joint_names))
    if seen != up:  # a check, never a switch: the official loader's frame is y-up
        msg = f"{path}: configured up axis {up!r} but the head is highest along {seen!r}"
        notes["up_axis_warning"] = msg
        warnings.warn(msg, stacklevel=2)
    if up == "y":
        joints = joints @ R_ZUP_FROM_YUP.T
        p = yup_params_to_zup(p, pelvis_rest)
    # the SMPL file has no rate of its own: over its whole span (the median of whole-us steps
    # 4166/4167 reads 239.98 for 240 Hz), or xdata.npz's frameRate when its stream runs at that rate
    t = s["time_s"]
    src_fps = float((len(t) - 1) / (t[-1] - t[0])) if len(t) > 1 and t[-1] > t[0] else cfg.fps
    if has_xsens:
        xs = read_xsens(files["xsens"])
        notes["repairs"].update(xsens_timestamp_steps=int(xs["repaired_steps"]),
                                xsens_quaternions=int(xs["repaired_quaternions"]))
        notes["xsens_header"] = xs["header"]
        p.update(_xsens_extras(xs, target_s))
        rate = xs["header"]["frame_rate_hz"]
        if abs(src_fps - rate) <= 0.01 * rate:
            src_fps = rate
    return HumanSequence(
        ref=ref, view="motion_only", fps=cfg.fps, t0_s=float(target_s[0]),
        joint_names=tuple(body.joint_names), joint_pos_w=joints.astype(np.float32),
        params={k: v.astype(np.float32) for k, v in p.items()}, source_frame_index=idx,
        texts=[], video=None, body_model=body.name, body_source="smpl_neutral",
        source_fps=src_fps, notes=notes,
    )


def _from_xsens(ref, files, cfg) -> HumanSequence:
    xs = read_xsens(files["xsens"])
    target_s, idx = uniform_index(xs["time_s"], cfg.fps)
    extras = _xsens_extras(xs, target_s)
    return HumanSequence(
        ref=ref, view="motion_only", fps=cfg.fps, t0_s=float(target_s[0]),
        joint_names=XSENS_SEGMENTS, joint_pos_w=extras["xsens_segment_pos_w"].astype(np.float32),
        params={k: v.astype(np.float32) for k, v in extras.items()}, source_frame_index=idx,
        texts=[], video=None, body_model="xsens-mvn", body_source="xsens",
        source_fps=float(xs["header"]["frame_rate_hz"]),  # the file's own rate (checked against its stamps)
        notes={"source_up_axis": "z", "xsens_header": xs["header"],
               "repairs": {"xsens_timestamp_steps": int(xs["repaired_steps"]),
                           "xsens_quaternions": int(xs["repaired_quaternions"])}},
    )
