"""Nymeria sequence folders as the public loader reads them, one data group at a time.

Written from `nymeria/definitions.py` (folder layout and data groups), `body_motion_provider.py` and
`xsens_constants.py` (xdata.npz keys: timestamps_us [us, time-code clock], frameCount, frameRate,
segment_tXYZ (N, 23*3), segment_qWXYZ (N, 23*4), foot_contacts), `smpl_provider.py`
(xdata_smpl_neutral.npz: betas, body_pose (N, 69), global_orient, transl, timestamps, y-up), and the
NymeriaPlus data groups (`body_raw`, `body_processed`, `narration`, `timesync_and_imu` =
recording_head/data/motion.vrs, `recording_head_data_data_vrs` = data.vrs). Narration CSVs carry the
bookkeeping columns the real files have (request_id, gaia_id, annotator, creation_time) beside the
"Describe my ..." text, with times in seconds on the head device clock. Not from our sample generator.

Nothing installable writes a VRS, so the head files are the repository's stand-ins (see
ingest/nymeria_clock.py): rgb.mp4 + rgb_timestamps_ns.csv for data.vrs, motion_timesync_ns.csv for
motion.vrs, each with both clocks per sample.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.video import encode_mp4

BODY_START_S = 38427.756  # time of day on the time-code clock, as in the report
DEVICE_OFFSET_S = 32596.5  # time code - head device time (device clocks count from boot: ~5831 s here)
RATE_HZ = 240.0
# segment heights of a standing adult [m], XSens segment order (xsens_constants.part_names)
_HEIGHTS = (1.00, 1.08, 1.16, 1.26, 1.36, 1.52, 1.62, 1.45, 1.42, 1.15, 0.90, 1.45, 1.42, 1.15, 0.90,
            0.95, 0.52, 0.08, 0.03, 0.95, 0.52, 0.08, 0.03)
_SIDE = (0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1)


@dataclass(frozen=True)
class Download:
    """Which data groups of one sequence are on disk, and how the head recording sits in time."""

    body_raw: bool = True  # body/xdata.npz
    body_processed: bool = False  # body/xdata_smpl_neutral.npz
    narration: bool = False  # narration/*.csv
    timesync: bool = False  # recording_head/data/motion.vrs (stand-in)
    head_rgb: bool = False  # recording_head/data/data.vrs (stand-in)
    seconds: float = 15.0  # body duration
    head_from_s: float = -2.0  # head recording span relative to the body start [s]
    head_to_s: float = 17.0
    header: dict | None = None  # xdata.npz header keys to override (e.g. {"frameRate": 120.0})


def body_times_us(seconds: float) -> np.ndarray:
    """240 Hz on the time-code clock in whole microseconds: steps of 4166 and 4167 us."""
    n = int(round(seconds * RATE_HZ))
    return np.round((BODY_START_S + np.arange(n) / RATE_HZ) * 1e6).astype(np.int64)


def _walk_segments(t_s: np.ndarray) -> np.ndarray:
    x = 1.0 * t_s  # walking along +x at 1 m/s, z-up
    pos = np.zeros((len(t_s), 23, 3))
    pos[..., 0] = x[:, None]
    pos[..., 1] = 0.15 * np.asarray(_SIDE)[None, :]
    pos[..., 2] = np.asarray(_HEIGHTS)[None, :]
    return pos


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def narration_rows(text_column: str, spans_s: list[tuple[float, float, str]]) -> tuple[list[str], list[list]]:
    """Rows with body-relative spans written as head device seconds."""
    header = ["request_id", "gaia_id", "start_time", "end_time", "annotator", "creation_time", text_column]
    rows = [[f"req{i}", "1234", f"{BODY_START_S - DEVICE_OFFSET_S + a:.3f}", f"{BODY_START_S - DEVICE_OFFSET_S + b:.3f}",
             "annotator_7", "2023-08-01 10:00:00", text] for i, (a, b, text) in enumerate(spans_s)]
    return header, rows


NARRATION_SPANS = [(0.2, 4.0, "C walks forward"), (4.0, 9.0, "C keeps walking"), (9.0, 15.0, "C walks on")]


def write_sequence(root: Path, name: str, dl: Download) -> Path:
    seq = Path(root) / name
    seq.mkdir(parents=True)
    (seq / "metadata.json").write_text("{}\n")
    t_us = body_times_us(dl.seconds)
    n = len(t_us)
    t_s = (t_us - t_us[0]) * 1e-6
    if dl.body_raw:
        pos = _walk_segments(t_s)
        quat = np.zeros((n, 23, 4))
        quat[..., 0] = 1.0
        arrays = {"timestamps_us": t_us, "frameCount": np.int64(n), "frameRate": np.float64(RATE_HZ),
                  "segmentCount": np.int64(23),
                  "segment_tXYZ": pos.reshape(n, -1).astype(np.float32),
                  "segment_qWXYZ": quat.reshape(n, -1).astype(np.float32),
                  "foot_contacts": np.ones((n, 4), dtype=np.int32)}
        arrays.update(dl.header or {})
        (seq / "body").mkdir(exist_ok=True)
        np.savez(seq / "body" / "xdata.npz", **arrays)
    if dl.body_processed:
        transl = np.zeros((n, 3), dtype=np.float32)
        transl[:, 0] = t_s  # y-up: walking along x, pelvis height on y
        transl[:, 1] = 0.95
        (seq / "body").mkdir(exist_ok=True)
        np.savez(seq / "body" / "xdata_smpl_neutral.npz", betas=np.zeros((n, 10), np.float32),
                 body_pose=np.zeros((n, 69), np.float32), global_orient=np.zeros((n, 3), np.float32),
                 transl=transl, timestamps=t_us)
    if dl.narration:
        _csv(seq / "narration" / "atomic_action.csv", *narration_rows("Describe my atomic actions", NARRATION_SPANS))
        _csv(seq / "narration" / "activity_summarization.csv",
             *narration_rows("Describe my activity", [(0.0, dl.seconds, "C walks across the hall")]))
    head = seq / "recording_head"
    t0_ns = int(round((BODY_START_S + dl.head_from_s) * 1e9))
    t1_ns = int(round((BODY_START_S + dl.head_to_s) * 1e9))
    off_ns = int(round(DEVICE_OFFSET_S * 1e9))
    if dl.head_rgb:
        tc = np.arange(t0_ns, t1_ns + 1, int(round(1e9 / 15)), dtype=np.int64)  # RGB at 15 fps
        frames = [np.full((32, 32, 3), (i * 7) % 255, np.uint8) for i in range(len(tc))]
        head.mkdir(parents=True, exist_ok=True)
        (head / "rgb.mp4").write_bytes(encode_mp4(frames, 15.0))
        _csv(head / "rgb_timestamps_ns.csv", ["capture_timestamp_ns", "timecode_ns"],
             [[int(t - off_ns), int(t)] for t in tc])
    if dl.timesync:
        tc = np.arange(t0_ns, t1_ns + 1, 100_000_000, dtype=np.int64)  # a map sample every 0.1 s
        _csv(head / "motion_timesync_ns.csv", ["capture_timestamp_ns", "timecode_ns"],
             [[int(t - off_ns), int(t)] for t in tc])
    return seq
