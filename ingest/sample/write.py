"""Write the sample corpus in the real Motion-X and Nymeria on-disk layouts."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.body_model import BuiltinSkeleton
from ingest.motionx import FPS_TABLE, LAYOUTS, MOTIONX_COLUMNS, MOTIONX_WIDTH, rotate_params
from ingest.sample.motions import Segment, generate
from ingest.sample.render import render_egocentric, render_third_person
from ingest.skeletons import SMPL_JOINTS, XSENS_FROM_SMPL, XSENS_SEGMENTS
from ingest.video import encode_mp4
from robomirror.atomic import npz_bytes, publish_bytes
from robomirror.rotations import R_ZUP_FROM_YUP, matrix_to_quat_wxyz

MOTIONX_FPS = 30.0
# the one humanml sequence from a 100 Hz AMASS source: int(100 / 30) = 3 -> 33.3 fps
HUMANML_100HZ_FPS = 100.0 / 3.0
FLIP_X = np.diag([1.0, -1.0, -1.0])  # half a turn about x: an upside-down body
NYMERIA_BODY_HZ = 240.0

_ADVERB = {0.6: "slowly", 1.0: "", 1.4: "quickly"}
_TEXT = {
    "stand": "a person stands still and looks around",
    "walk_forward": "a person walks forward",
    "walk_backward": "a person walks backward carefully",
    "turn_in_place": "a person turns around in place",
    "side_step": "a person side-steps to the left",
    "squat": "a person squats down and stands back up",
    "wave": "a person waves with the right hand",
    "reach": "a person reaches forward with both arms",
    "jog": "a person jogs forward",
}
# kind -> (atomic action, posture, hands/arms, legs/feet, focus of attention)
_NARRATION = {
    "stand": ("C stands still", "C stands upright", "C keeps the arms relaxed", "C keeps both feet still",
              "C looks around the room"),
    "walk_forward": ("C walks forward", "C walks upright", "C swings the arms", "C steps forward",
                     "C looks ahead while walking"),
    "walk_backward": ("C walks backward", "C leans slightly forward", "C holds the arms low", "C steps backward",
                      "C looks down at the floor"),
    "turn_in_place": ("C turns around", "C stands upright while turning", "C keeps the arms close",
                      "C pivots on the feet", "C scans the room while turning"),
    "side_step": ("C steps sideways", "C stands upright", "C keeps the arms relaxed", "C steps to the side",
                  "C keeps looking forward"),
    "squat": ("C squats down", "C bends the knees and hips", "C holds the arms forward", "C bends both legs",
              "C looks at the floor in front"),
    "wave": ("C waves the right hand", "C stands upright", "C raises and waves the right hand",
             "C keeps both feet still", "C looks at someone across the room"),
    "reach": ("C reaches forward", "C leans forward", "C stretches both arms forward", "C keeps both feet still",
              "C looks at an object ahead"),
    "jog": ("C jogs forward", "C leans slightly forward", "C pumps the arms", "C runs with short strides",
            "C looks far ahead"),
}
MOTION_NARRATION_COLUMNS = ("Describe my body posture", "Describe my hands/arms motion",
                            "Describe my legs/feet motion", "Describe my focus attention")


def describe(seg: Segment) -> str:
    adv = _ADVERB[min(_ADVERB, key=lambda k: abs(k - seg.speed))]
    return f"{_TEXT[seg.kind]} {adv}".strip()


@dataclass(frozen=True)
class MotionXItem:
    subset: str
    name: str
    segment: Segment
    beta0: float
    layout: str = "motionx++"  # "motionx_v1" | "motionx++"
    video: bool = True  # v1 and the mocap subsets ship no video
    fps: float = MOTIONX_FPS
    orientation: str = "yup"  # "yup" (as released), "zup" (GRAB-style un-rotated), "flip_half" (EgoBody-style),
    #                           "upside_down" (whole sequence flipped)
    humanml_text: bool = False  # HumanML3D `caption#tokens#from#to` lines


def _pos_tags(caption: str) -> str:
    """A stand-in for HumanML3D's spaCy tokens (word/POS); the reader must drop them."""
    tag = {"a": "DET", "person": "NOUN", "the": "DET", "and": "CCONJ", "with": "ADP", "in": "ADP"}
    return " ".join(f"{w}/{tag.get(w, 'VERB' if w.endswith('s') else 'ADV')}" for w in caption.split())


def _label_text(item: MotionXItem) -> str:
    caption = describe(item.segment)
    if not item.humanml_text:
        return caption + "\n"
    half = round(item.segment.seconds / 2, 1)
    first = f"a person begins to {item.segment.kind.replace('_', ' ')}"
    return (f"{caption}#{_pos_tags(caption)}#0.0#0.0\n"
            f"{first}#{_pos_tags(first)}#0.0#{half}\n")


@dataclass(frozen=True)
class NymeriaItem:
    folder: str  # <date>_<session>_<name>_<act>_<uid>
    segments: tuple[Segment, ...]
    beta0: float
    clock_start_s: float  # time-code clock time of the first body frame [s]
    device_offset_s: float  # time code - head device time of this recording [s] (differs per recording)
    video_hz: float  # head RGB rate: most real recordings 30 Hz, some 15
    # False: a download without the head recording (data.vrs) but with `timesync_and_imu` (motion.vrs,
    # here its stand-in recording_head/motion_timesync_ns.csv): motion-only clips with placed narrations
    head_video: bool = True


def _orient(p: dict[str, np.ndarray], orientation: str) -> dict[str, np.ndarray]:
    """Reproduce Motion-X's per-subset orientation quirks on y-up parameters."""
    if orientation == "yup":
        return p
    n = len(p["trans"])
    zero = np.zeros((n, 3))
    rest = BuiltinSkeleton("smplx").joints(zero, np.zeros((n, 63)), zero, p["betas"])[:, 0]
    if orientation == "zup":
        return rotate_params(p, rest, R_ZUP_FROM_YUP)
    if orientation == "upside_down":
        return rotate_params(p, rest, FLIP_X)
    flipped = rotate_params(p, rest, FLIP_X)  # flip_half: the second half upside down
    return {k: np.where((np.arange(n) >= n // 2)[:, None], flipped[k], v) for k, v in p.items()}


def write_motionx(root: Path, item: MotionXItem, video_size: int) -> None:
    p = _orient(generate([item.segment], item.fps, item.beta0, yaw0=0.3), item.orientation)
    n = len(p["trans"])
    row = np.zeros((n, MOTIONX_WIDTH), dtype=np.float32)
    cols = {"root_orient": p["root_orient"], "pose_body": p["pose_body"], "trans": p["trans"], "betas": p["betas"]}
    for k, v in cols.items():
        a, b = MOTIONX_COLUMNS[k]
        row[:, a:b] = v
    buf = io.BytesIO()
    np.save(buf, row, allow_pickle=False)
    motion_dir, text_dir, video_dir = LAYOUTS[item.layout]
    publish_bytes(root / motion_dir / item.subset / f"{item.name}.npy", buf.getvalue())
    publish_bytes(root / text_dir / item.subset / f"{item.name}.txt", _label_text(item).encode())
    if item.video:
        joints = BuiltinSkeleton("smplx").joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"])
        frames = render_third_person(joints @ R_ZUP_FROM_YUP.T, video_size)
        publish_bytes(root / video_dir / item.subset / f"{item.name}.mp4", encode_mp4(frames, item.fps))


def write_fps_table(root: Path, items: list[MotionXItem]) -> None:
    """Per-sequence rates of the sequences whose subset has no single rate (humanml)."""
    rows = [[it.subset, it.name, f"{it.fps:.6f}"] for it in items if abs(it.fps - MOTIONX_FPS) > 1e-9]
    if rows:
        publish_bytes(root / FPS_TABLE, _csv(rows, ["subset", "name", "fps"]))


def _csv(rows: list[list], header: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def write_nymeria(root: Path, item: NymeriaItem, video_size: int) -> None:
    seq = root / item.folder
    segs = list(item.segments)
    p = generate(segs, NYMERIA_BODY_HZ, item.beta0, yaw0=-0.4)
    n = len(p["trans"])
    # body timestamps are on the time-code clock (as in the real files), with the two kinds of bad
    # step the official loader repairs: a duplicated stamp (0, then 2x) and a 3 ms glitch
    t_us = np.round((item.clock_start_s + np.arange(n) / NYMERIA_BODY_HZ) * 1e6).astype(np.int64)
    t_us[n // 3] = t_us[n // 3 - 1]
    t_us[2 * n // 3] += 3000
    body_pose69 = np.concatenate([p["pose_body"], np.zeros((n, 6))], axis=1)  # + SMPL hand joints
    publish_bytes(seq / "body" / "xdata_smpl_neutral.npz", npz_bytes({
        "betas": p["betas"].astype(np.float32), "body_pose": body_pose69.astype(np.float32),
        "global_orient": p["root_orient"].astype(np.float32), "transl": p["trans"].astype(np.float32),
        "timestamps": t_us,
    }))
    skel = BuiltinSkeleton("smpl")
    pos_y, rot_y = skel.forward(p["root_orient"], body_pose69, p["trans"], p["betas"])
    pos_z, rot_z = pos_y @ R_ZUP_FROM_YUP.T, R_ZUP_FROM_YUP @ rot_y
    idx = [SMPL_JOINTS.index(XSENS_FROM_SMPL[s]) for s in XSENS_SEGMENTS]
    seg_pos, seg_q = pos_z[:, idx], matrix_to_quat_wxyz(rot_z[:, idx])
    seg_q[n // 2, 5] = 0.0  # a dropped XSens sample (all-zero quaternion), held from the frame before
    feet = pos_z[:, [SMPL_JOINTS.index("left_ankle"), SMPL_JOINTS.index("right_ankle")], 2]
    contacts = (feet < 0.12).astype(np.int32)
    publish_bytes(seq / "body" / "xdata.npz", npz_bytes({
        "timestamps_us": t_us, "frameCount": np.int64(n), "frameRate": np.float64(NYMERIA_BODY_HZ),
        "segment_tXYZ": seg_pos.reshape(n, -1).astype(np.float32),
        "segment_qWXYZ": seg_q.reshape(n, -1).astype(np.float32), "foot_contacts": contacts,
    }))
    # narration times are seconds on the head *device* clock (see ingest.nymeria_clock)
    bounds = np.cumsum([0.0] + [s.seconds for s in segs]) + item.clock_start_s - item.device_offset_s
    span = [[f"{bounds[i]:.3f}", f"{bounds[i + 1]:.3f}"] for i in range(len(segs))]
    atomic = [span[i] + [_NARRATION[s.kind][0]] for i, s in enumerate(segs)]
    motion = [span[i] + list(_NARRATION[s.kind][1:]) for i, s in enumerate(segs)]
    kinds = ", ".join(dict.fromkeys(s.kind.replace("_", " ") for s in segs))
    publish_bytes(seq / "narration" / "atomic_action.csv", _csv(atomic, ["start_time", "end_time", "Describe my atomic actions"]))
    publish_bytes(seq / "narration" / "motion_narration.csv",
                  _csv(motion, ["start_time", "end_time", *MOTION_NARRATION_COLUMNS]))
    publish_bytes(seq / "narration" / "activity_summarization.csv", _csv(
        [[f"{bounds[0]:.3f}", f"{bounds[-1]:.3f}", f"C moves around a room: {kinds}"]],
        ["start_time", "end_time", "Describe my activity"]))
    if not item.head_video:
        # the head clock without the RGB recording: one map sample every 0.1 s over the body span
        tc_ns = np.round((item.clock_start_s + np.arange(0.0, n / NYMERIA_BODY_HZ + 0.1, 0.1)) * 1e9).astype(np.int64)
        dev_ns = tc_ns - int(round(item.device_offset_s * 1e9))
        publish_bytes(seq / "recording_head" / "motion_timesync_ns.csv",
                      _csv([[int(d), int(t)] for d, t in zip(dev_ns, tc_ns, strict=True)],
                           ["capture_timestamp_ns", "timecode_ns"]))
        _write_nymeria_metadata(seq, item)
        return
    step = int(round(NYMERIA_BODY_HZ / item.video_hz))
    head = SMPL_JOINTS.index("head")
    frames = render_egocentric(pos_z[::step, head], rot_z[::step, head], video_size)
    publish_bytes(seq / "recording_head" / "rgb.mp4", encode_mp4(frames, item.video_hz))
    # frame k is captured with body frame k*step; both clocks per frame, as the VRS would give them
    tc_ns = np.round((item.clock_start_s + np.arange(0, n, step) / NYMERIA_BODY_HZ) * 1e9).astype(np.int64)
    dev_ns = tc_ns - int(round(item.device_offset_s * 1e9))
    publish_bytes(seq / "recording_head" / "rgb_timestamps_ns.csv",
                  _csv([[int(d), int(t)] for d, t in zip(dev_ns, tc_ns, strict=True)],
                       ["capture_timestamp_ns", "timecode_ns"]))
    _write_nymeria_metadata(seq, item)


def _write_nymeria_metadata(seq: Path, item: NymeriaItem) -> None:
    publish_bytes(seq / "metadata.json", (json.dumps({"sequence_name": item.folder, "synthetic": True, "rgb_fps": item.video_hz,
                                                      "generator": "robomirror sample corpus"}, indent=1) + "\n").encode())
