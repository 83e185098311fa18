"""Video in and out with PyAV: decode a source (mp4 or Aria VRS) and re-encode clips.

Encoding is deterministic (libx264, one thread, fixed options, no creation time), so the same
frames always give the same mp4 bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Iterator

import av
import numpy as np

from ingest.failures import Reason
from robomirror.errors import SourceError

ARIA_RGB_STREAM = "214-1"  # Aria RGB camera stream id in recording_head/data/data.vrs


@dataclass(frozen=True)
class VideoSource:
    """Where a sequence's video comes from and how its frame times map to the motion clock.

    kind: "mp4" or "vrs". time_offset_s is added to the container's own frame times; for an mp4
    with a timestamp sidecar, `timestamps_s` replaces the container times.
    """

    path: str
    kind: str = "mp4"
    time_offset_s: float = 0.0
    timestamps_s: tuple[float, ...] | None = None


def iter_frames(src: VideoSource, size: int) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time on the motion clock [s], RGB frame (size, size, 3) uint8) in time order."""
    if src.kind == "vrs":
        yield from _iter_vrs(src, size)
        return
    try:
        container = av.open(src.path)
    except (av.error.FFmpegError, OSError) as e:
        raise SourceError(Reason.VIDEO_UNREADABLE, src.path, f"cannot open video: {e}") from e
    try:
        if not container.streams.video:
            raise SourceError(Reason.VIDEO_UNREADABLE, src.path, "no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        i = 0
        for frame in container.decode(stream):
            if src.timestamps_s is not None:
                if i >= len(src.timestamps_s):
                    break
                t = src.timestamps_s[i]
            else:
                t = float(frame.time) if frame.time is not None else i / float(stream.average_rate or 30)
            i += 1
            rgb = frame.reformat(width=size, height=size, format="rgb24").to_ndarray()
            yield t + src.time_offset_s, rgb
        if i == 0:
            raise SourceError(Reason.VIDEO_UNREADABLE, src.path, "the video has no decodable frame")
    except av.error.FFmpegError as e:
        raise SourceError(Reason.VIDEO_UNREADABLE, src.path, f"decoding failed: {e}") from e
    finally:
        container.close()


def _iter_vrs(src: VideoSource, size: int) -> Iterator[tuple[float, np.ndarray]]:
    """Aria RGB frames through projectaria-tools. Frame i is at `timestamps_s[i]` when given (the
    reader converts device time to time code there); otherwise at its device capture time."""
    try:
        from projectaria_tools.core import data_provider
        from projectaria_tools.core.stream_id import StreamId
    except ImportError as e:  # pragma: no cover - a pinned dependency
        raise SourceError(Reason.VIDEO_UNREADABLE, src.path, f"projectaria-tools missing: {e}") from e
    provider = data_provider.create_vrs_data_provider(src.path)
    if provider is None:
        raise SourceError(Reason.VIDEO_UNREADABLE, src.path, "projectaria-tools cannot open this VRS file")
    stream = StreamId(ARIA_RGB_STREAM)
    n = provider.get_num_data(stream)
    if n == 0:
        raise SourceError(Reason.VIDEO_UNREADABLE, src.path, f"VRS has no frames in stream {ARIA_RGB_STREAM}")
    for i in range(n):
        image, record = provider.get_image_data_by_index(stream, i)
        rgb = image.to_numpy_array()
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=-1)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., :3]), format="rgb24")
        out = frame.reformat(width=size, height=size, format="rgb24").to_ndarray()
        t = src.timestamps_s[i] if src.timestamps_s is not None and i < len(src.timestamps_s) \
            else record.capture_timestamp_ns * 1e-9
        yield t + src.time_offset_s, out


def encode_mp4(frames: list[np.ndarray], fps: float, crf: int = 23) -> bytes:
    """Encode RGB frames (H, W, 3) uint8 as an H.264 mp4, deterministically."""
    if not frames:
        raise ValueError("encode_mp4 needs at least one frame")
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    rate = _as_rate(fps)
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "veryfast", "crf": str(crf)}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def decode_mp4_bytes(data: bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """(frames (N, H, W, 3) uint8, times (N,) [s], average fps) of an in-memory mp4."""
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        frames, times = [], []
        for f in c.decode(stream):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.time))
        return np.stack(frames), np.array(times), float(stream.average_rate)


def _as_rate(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)

