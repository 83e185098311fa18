"""Nymeria's two clocks, and the map between them for one head recording.

Facts, from the official loader (facebookresearch/nymeria_dataset, `nymeria/`):
- The body files (`body/xdata.npz` `timestamps_us`, `body/xdata_smpl_neutral.npz` `timestamps`) are
  on the **TIME_CODE** clock shared by every device of a take: `data_provider.py` multiplies them by
  1e3 and intersects them with each recording's `get_first/last_time_ns_all_streams(TIME_CODE)`.
- An RGB frame's `capture_timestamp_ns` is on the head Aria's own **DEVICE_TIME** clock:
  `recording_data_provider.py::get_rgb_image` converts a time-code query with
  `convert_from_timecode_to_device_time_ns` before `get_image_data_by_time_ns(..., DEVICE_TIME)`.
- Narration CSVs (`start_time`, `end_time`) are seconds on the head device clock: the official
  narration loader is an empty stub (`nymeriaplus/loaders/narration.py`), and the public loaders
  that use them compare them with head-device times (`tracking_timestamp_us` of the head's MPS
  trajectory, or frame time codes converted with `convert_from_timecode_to_device_time_ns`).
So everything is put on the time-code clock (the motion clock), per recording: the offset between
a head device and time code differs from one recording to the next.

A real recording's map comes from projectaria-tools (`convert_from_device_time_to_timecode_ns`,
present in 2.3.0), from either head VRS: `recording_head/data/data.vrs` (the RGB recording, data group
`recording_head_data_data_vrs`) or `recording_head/data/motion.vrs` (IMU only, NymeriaPlus data group
`timesync_and_imu`; `recording_data_provider.py` falls back to it for the TIME_CODE span). Without
either, head-device times (the narrations) cannot be put on the motion clock.
The VRS-less sample stand-ins carry both clocks per sample (`capture_timestamp_ns` = device time,
`timecode_ns`), as the VRS would give them: `recording_head/rgb_timestamps_ns.csv` per RGB frame
(for data.vrs) and `recording_head/motion_timesync_ns.csv` (for motion.vrs).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.checks import check_increasing
from ingest.failures import Reason
from ingest.video import ARIA_RGB_STREAM
from robomirror.errors import SourceError

STANDIN_COLUMNS = ("capture_timestamp_ns", "timecode_ns")
ARIA_IMU_STREAM = "1202-1"  # right IMU of an Aria recording (motion.vrs holds the IMU streams)
MAX_TIMESYNC_SAMPLES = 4096  # samples of the device -> time-code map read from motion.vrs (1 kHz IMU)


@dataclass(frozen=True)
class HeadClock:
    """Device time -> time code of one head recording, sampled at its RGB frames.

    device_ns, timecode_ns: (K,) int64 [ns], K >= 1, device_ns strictly increasing. Between samples
    the map is linear; outside them it keeps the nearest end's offset (the clocks differ by an
    offset plus a drift of a few ppm, which is negligible over the edge of a recording).
    """

    device_ns: np.ndarray
    timecode_ns: np.ndarray

    def to_timecode_s(self, device_s: np.ndarray | float) -> np.ndarray:
        d = np.asarray(device_s, dtype=np.float64) * 1e9
        offset = np.interp(d, self.device_ns.astype(np.float64), (self.timecode_ns - self.device_ns).astype(np.float64))
        return (d + offset) * 1e-9

    @property
    def frame_timecode_s(self) -> np.ndarray:
        return self.timecode_ns.astype(np.float64) * 1e-9

    @property
    def offset_s(self) -> float:
        """Median time code - device time [s] (recorded in the clip meta)."""
        return float(np.median(self.timecode_ns - self.device_ns)) * 1e-9


def read_standin_clock(path: str) -> HeadClock:
    """The sample's per-frame clock table (both clocks, as a VRS would give them)."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except FileNotFoundError as e:
        raise SourceError(Reason.MISSING_FILE, path, "rgb.mp4 needs its frame timestamps") from e
    except (UnicodeDecodeError, csv.Error) as e:
        raise SourceError(Reason.BAD_CSV, path, f"unreadable CSV: {e}") from e
    missing = [c for c in STANDIN_COLUMNS if c not in header]
    if missing:
        raise SourceError(Reason.BAD_CSV, path, f"expected columns {list(STANDIN_COLUMNS)} (device time and time "
                          f"code per frame); missing {missing}, found {header}")
    try:
        dev = np.array([int(r["capture_timestamp_ns"]) for r in rows], dtype=np.int64)
        tc = np.array([int(r["timecode_ns"]) for r in rows], dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise SourceError(Reason.BAD_CSV, path, f"timestamps must be integers [ns]: {e}") from e
    if len(dev) == 0:
        raise SourceError(Reason.EMPTY, path, "no frame timestamps")
    check_increasing(dev, path, "capture_timestamp_ns")
    check_increasing(tc, path, "timecode_ns")
    return HeadClock(dev, tc)


def read_vrs_clock(path: str, stream: str, max_samples: int | None = None) -> HeadClock:
    """Device time and time code of `stream` of a real Aria VRS: every RGB frame of data.vrs (they
    become the frame times), or at most `max_samples` evenly spaced IMU samples of motion.vrs (the
    map is linear between samples; first and last always kept)."""
    try:
        from projectaria_tools.core import data_provider
        from projectaria_tools.core.sensor_data import TimeDomain
        from projectaria_tools.core.stream_id import StreamId
    except ImportError as e:  # pragma: no cover - a pinned dependency
        raise SourceError(Reason.VIDEO_UNREADABLE, path, f"projectaria-tools missing: {e}") from e
    provider = data_provider.create_vrs_data_provider(str(path))
    if provider is None:
        raise SourceError(Reason.VIDEO_UNREADABLE, path, "projectaria-tools cannot open this VRS file")
    dev = np.asarray(provider.get_timestamps_ns(StreamId(stream), TimeDomain.DEVICE_TIME), dtype=np.int64)
    if len(dev) == 0:
        raise SourceError(Reason.VIDEO_UNREADABLE, path, f"VRS has no frames in stream {stream}")
    if max_samples is not None and len(dev) > max_samples:
        dev = dev[np.unique(np.linspace(0, len(dev) - 1, max_samples).round().astype(np.int64))]
    try:
        tc = np.array([provider.convert_from_device_time_to_timecode_ns(int(t)) for t in dev], dtype=np.int64)
    except Exception as e:  # noqa: BLE001 - a VRS without time-code sync is bad input, not a bug
        raise SourceError(Reason.VIDEO_UNREADABLE, path,
                          f"this VRS has no device-time -> time-code map (TIME_CODE sync missing): {e}") from e
    return HeadClock(dev, tc)


def standin_exists(head_dir: Path) -> bool:
    return (head_dir / "rgb.mp4").is_file()


def read_head_clock(path: str, kind: str) -> HeadClock:
    """The device -> time-code map from one head file. kind: "rgb_vrs" (data.vrs), "timesync_vrs"
    (motion.vrs) or "standin" (the sample's two-clock CSV)."""
    if kind == "rgb_vrs":
        return read_vrs_clock(path, ARIA_RGB_STREAM)
    if kind == "timesync_vrs":
        return read_vrs_clock(path, ARIA_IMU_STREAM, MAX_TIMESYNC_SAMPLES)
    return read_standin_clock(path)
