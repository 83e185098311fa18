"""Write the sample corpus in the real Motion-X and Nymeria on-disk layouts."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.body_model import BuiltinSkeleton
from ingest.motionx import MOTIONX_COLUMNS, MOTIONX_WIDTH
from ingest.sample.motions import Segment, generate
from ingest.sample.render import render_egocentric, render_third_person
from ingest.skeletons import SMPL_JOINTS, XSENS_FROM_SMPL, XSENS_SEGMENTS
from ingest.video import encode_mp4
from robomirror.atomic import npz_bytes, publish_bytes
from robomirror.rotations import R_ZUP_FROM_YUP, matrix_to_quat_wxyz

MOTIONX_FPS = 30.0
NYMERIA_BODY_HZ = 240.0
NYMERIA_VIDEO_HZ = 15.0

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
_NARRATION = {
    "stand": ("C stands still", "C looks around the room"),
    "walk_forward": ("C walks forward", "C looks ahead while walking"),
    "walk_backward": ("C walks backward", "C looks down at the floor"),
    "turn_in_place": ("C turns around", "C scans the room while turning"),
    "side_step": ("C steps sideways", "C keeps looking forward"),
    "squat": ("C squats down", "C looks at the floor in front"),
    "wave": ("C waves the right hand", "C looks at someone across the room"),
    "reach": ("C reaches forward", "C looks at an object ahead"),
    "jog": ("C jogs forward", "C looks far ahead"),
}


def describe(seg: Segment) -> str:
    adv = _ADVERB[min(_ADVERB, key=lambda k: abs(k - seg.speed))]
    return f"{_TEXT[seg.kind]} {adv}".strip()


@dataclass(frozen=True)
class MotionXItem:
    subset: str
    name: str
    segment: Segment
    beta0: float


@dataclass(frozen=True)
class NymeriaItem:
    folder: str  # <date>_<session>_<name>_<act>_<uid>
    segments: tuple[Segment, ...]
    beta0: float
    clock_start_s: float  # device-clock time of the first frame [s]


def write_motionx(root: Path, item: MotionXItem, video_size: int) -> None:
    p = generate([item.segment], MOTIONX_FPS, item.beta0, yaw0=0.3)
    n = len(p["trans"])
    row = np.zeros((n, MOTIONX_WIDTH), dtype=np.float32)
    cols = {"root_orient": p["root_orient"], "pose_body": p["pose_body"], "trans": p["trans"], "betas": p["betas"]}
    for k, v in cols.items():
        a, b = MOTIONX_COLUMNS[k]
        row[:, a:b] = v
    buf = io.BytesIO()
    np.save(buf, row, allow_pickle=False)
    publish_bytes(root / "motion_data" / "smplx_322" / item.subset / f"{item.name}.npy", buf.getvalue())
    publish_bytes(root / "texts" / "semantic_labels" / item.subset / f"{item.name}.txt",
                  (describe(item.segment) + "\n").encode())
    joints = BuiltinSkeleton("smplx").joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"])
    frames = render_third_person(joints @ R_ZUP_FROM_YUP.T, video_size)
    publish_bytes(root / "video" / item.subset / f"{item.name}.mp4", encode_mp4(frames, MOTIONX_FPS))


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
    t_us = np.round((item.clock_start_s + np.arange(n) / NYMERIA_BODY_HZ) * 1e6).astype(np.int64)
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
    feet = pos_z[:, [SMPL_JOINTS.index("left_ankle"), SMPL_JOINTS.index("right_ankle")], 2]
    contacts = (feet < 0.12).astype(np.int32)
    publish_bytes(seq / "body" / "xdata.npz", npz_bytes({
        "timestamps_us": t_us, "frameCount": np.int64(n), "frameRate": np.float64(NYMERIA_BODY_HZ),
        "segment_tXYZ": seg_pos.reshape(n, -1).astype(np.float32),
        "segment_qWXYZ": seg_q.reshape(n, -1).astype(np.float32), "foot_contacts": contacts,
    }))
    bounds = np.cumsum([0.0] + [s.seconds for s in segs]) + item.clock_start_s
    atomic = [[f"{bounds[i]:.3f}", f"{bounds[i + 1]:.3f}", _NARRATION[s.kind][0]] for i, s in enumerate(segs)]
    motion = [[f"{bounds[i]:.3f}", f"{bounds[i + 1]:.3f}", f"{_NARRATION[s.kind][1]}"] for i, s in enumerate(segs)]
    kinds = ", ".join(dict.fromkeys(s.kind.replace("_", " ") for s in segs))
    publish_bytes(seq / "narration" / "atomic_action.csv", _csv(atomic, ["start_time", "end_time", "Describe my atomic actions"]))
    publish_bytes(seq / "narration" / "motion_narration.csv", _csv(motion, ["start_time", "end_time", "Describe my focus attention"]))
    publish_bytes(seq / "narration" / "activity_summarization.csv", _csv(
        [[f"{bounds[0]:.3f}", f"{bounds[-1]:.3f}", f"C moves around a room: {kinds}"]],
        ["start_time", "end_time", "Describe my activity"]))
    step = int(round(NYMERIA_BODY_HZ / NYMERIA_VIDEO_HZ))
    head = SMPL_JOINTS.index("head")
    frames = render_egocentric(pos_z[::step, head], rot_z[::step, head], video_size)
    publish_bytes(seq / "recording_head" / "rgb.mp4", encode_mp4(frames, NYMERIA_VIDEO_HZ))
    ts_ns = [[int(t) * 1000] for t in t_us[::step]]
    publish_bytes(seq / "recording_head" / "rgb_timestamps_ns.csv", _csv(ts_ns, ["timestamp_ns"]))
    publish_bytes(seq / "metadata.json", (json.dumps({"sequence_name": item.folder, "synthetic": True,
                                                      "generator": "robomirror sample corpus"}, indent=1) + "\n").encode())
