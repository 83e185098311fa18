"""What a reader hands to clip cutting: one human motion sequence in the internal convention."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.video import VideoSource


@dataclass(frozen=True)
class TextSpan:
    """A text about the sequence. start_s/end_s on the motion clock; None = whole sequence."""

    kind: str  # e.g. "semantic_label", "motion_narration", "atomic_action", "activity_summarization"
    text: str
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True)
class SourceRef:
    """Identity of one sequence before it is read (cheap to send to a worker)."""

    dataset: str  # "motionx" | "nymeria"
    subset: str  # Motion-X subset folder, or the Nymeria date_session prefix
    sequence: str  # name unique within dataset/subset
    root: str  # dataset root folder
    files: tuple[tuple[str, str], ...]  # (role, path) pairs this sequence reads
    layout: str = ""  # the on-disk release layout it was found in (e.g. "motionx_v1", "motionx++")
    problem: tuple[str, str] | None = None  # (reason, detail): found but not readable as a source

    @classmethod
    def unusable(cls, dataset: str, path: Path | str, root: Path | str, reason: str, detail: str) -> "SourceRef":
        """Something discovery found that is not a source: it becomes one ledger row, never a skip."""
        name = Path(path).name
        return cls(dataset, "(unusable)", name, str(root), (("path", str(path)),), "", (reason, detail))

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.subset}/{self.sequence}"


@dataclass
class HumanSequence:
    """A sequence resampled to the clip frame rate, z-up, metres, quaternions wxyz.

    joint_pos_w: (T, J, 3) float32 [m] world positions of `joint_names`.
    params: per-frame body-model parameters converted to z-up (e.g. root_orient (T, 3) [rad],
        pose_body (T, 63), trans (T, 3) [m], betas (T, 10)), plus extra arrays such as XSens
        segments; every array has T rows.
    source_frame_index: (T,) fractional index into the source motion frames.
    t0_s: motion-clock time of frame 0 [s]; frame k is at t0_s + k / fps.
    """

    ref: SourceRef
    view: str  # "third_person" | "egocentric" | "motion_only" (no video: Motion-X v1, mocap subsets)
    fps: float
    t0_s: float
    joint_names: tuple[str, ...]
    joint_pos_w: np.ndarray
    params: dict[str, np.ndarray]
    source_frame_index: np.ndarray
    texts: list[TextSpan]
    video: VideoSource | None  # None: a motion-only sequence (no video member, null video columns)
    body_model: str
    body_source: str  # "smplx_322", "smpl_neutral" or "xsens"
    source_fps: float
    notes: dict[str, Any] = field(default_factory=dict)  # JSON-able facts for the clip meta (repairs, clocks)
    # Set by readers whose video may cover only part of the motion (Nymeria's head recording): the
    # motion-clock span [s] its frames cover. Clips inside get video, clips outside are built
    # motion-only (or dropped, `partial_video`). None: the video must cover every clip.
    video_span_s: tuple[float, float] | None = None
    # issue 22: what the motion was performed on (stairs, a bench, a slope; ingest/scene.py), in the frame of
    # joint_pos_w; None: a flat floor at z = 0. Stored once per sequence, referenced by every clip's meta.
    scene: Any = None  # ingest.scene.Scene | None

    @property
    def n_frames(self) -> int:
        return int(self.joint_pos_w.shape[0])
