"""Typed, validated configuration of the ingest stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robomirror import FORMAT_VERSION
from robomirror.atomic import digest_of
from robomirror.config import from_dict, type_problems
from robomirror.errors import ConfigError


@dataclass(frozen=True)
class IngestConfig:
    fps: float = 30.0  # motion frame rate of every clip [Hz]
    clip_frames: int = 150  # frames per clip (5 s at 30 Hz)
    stride_frames: int = 150  # frames between clip starts; < clip_frames gives overlapping clips
    min_frames: int = 60  # sequences shorter than a clip but at least this long give one short clip
    video_size: int = 128  # re-encoded video is video_size x video_size pixels
    video_crf: int = 23  # libx264 constant rate factor of the re-encoded clip video
    shard_target_bytes: int = 32 << 20  # a shard is closed once it reaches this size [bytes]
    nymeria_body_source: str = "smpl"  # "smpl" (xdata_smpl_neutral.npz) or "xsens" (xdata.npz)
    nymeria_up_axis: str = "y"  # up axis of NymeriaPlus SMPL ("y": official smpl_provider.py); a check warns
    body_models_dir: str | None = None  # folder with real smplx/ and smpl/ .npz model files
    on_error: str = "ledger"  # "ledger": record a failing source and go on; "raise": stop
    partial_video: str = "motion_only"  # clips outside a video that covers part of the motion: "motion_only" | "drop"

    def __post_init__(self) -> None:
        problems = type_problems(self)
        if problems:
            raise ConfigError("invalid ingest config: " + "; ".join(problems))
        if self.fps <= 0:
            problems.append(f"fps must be > 0, got {self.fps}")
        if self.clip_frames < 2:
            problems.append(f"clip_frames must be >= 2, got {self.clip_frames}")
        if not 1 <= self.stride_frames:
            problems.append(f"stride_frames must be >= 1, got {self.stride_frames}")
        if not 1 <= self.min_frames <= self.clip_frames:
            problems.append(f"min_frames must be in [1, clip_frames={self.clip_frames}], got {self.min_frames}")
        if self.video_size < 16 or self.video_size % 2:
            problems.append(f"video_size must be an even number >= 16, got {self.video_size}")
        if not 0 <= self.video_crf <= 51:
            problems.append(f"video_crf must be in [0, 51], got {self.video_crf}")
        if self.shard_target_bytes < 1:
            problems.append(f"shard_target_bytes must be >= 1, got {self.shard_target_bytes}")
        if self.nymeria_body_source not in ("smpl", "xsens"):
            problems.append(f"nymeria_body_source must be 'smpl' or 'xsens', got {self.nymeria_body_source!r}")
        if self.nymeria_up_axis not in ("y", "z"):
            problems.append(f"nymeria_up_axis must be 'y' or 'z', got {self.nymeria_up_axis!r}")
        if self.partial_video not in ("motion_only", "drop"):
            problems.append(f"partial_video must be 'motion_only' or 'drop', got {self.partial_video!r}")
        if self.on_error not in ("ledger", "raise"):
            problems.append(f"on_error must be 'ledger' or 'raise', got {self.on_error!r}")
        if problems:
            raise ConfigError("invalid ingest config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "IngestConfig":
        return from_dict(cls, d, "ingest")

    def fingerprint(self) -> str:
        """Digest of every field that changes clip bytes (not shard size or error policy)."""
        d = asdict(self)
        for k in ("shard_target_bytes", "on_error"):
            d.pop(k)
        d["body_models"] = None if self.body_models_dir is None else str(Path(self.body_models_dir).resolve())
        d.pop("body_models_dir")
        if d["partial_video"] == "motion_only":  # added later: at its default, clips keep the bytes they had
            d.pop("partial_video")
        return digest_of([FORMAT_VERSION, sorted(d.items())])[:16]


def default_config() -> IngestConfig:
    return IngestConfig()
