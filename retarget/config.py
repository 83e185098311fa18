"""Typed, validated configuration of the retarget stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from retarget.g1 import CONFIGS, DEFAULT_CONFIG
from robomirror import FORMAT_VERSION
from robomirror.atomic import digest_of
from robomirror.config import from_dict, type_problems
from robomirror.errors import ConfigError

# Bumped whenever the retargeter's output changes for the same config (part of the fingerprint, so
# cached retargets of older code are recomputed): 2 = clearance through contact-free frames, a converged
# first frame; 3 = the frame of the max keypoint error in retarget.json and the manifest.
RETARGET_REVISION = 3


@dataclass(frozen=True)
class RetargetConfig:
    robot: str = DEFAULT_CONFIG  # robot configuration: "g1_23dof" (wrists locked) or "g1_29dof"
    robot_xml: str | None = None  # a user's own G1 MJCF instead of the mjlab copy
    body_models_dir: str | None = None  # real smplx/ and smpl/ model files: enables the betas fit
    proportion_blend: float = 0.5  # shape fit: 1 = robot segment lengths, 0 = one uniform scale
    iterations_per_frame: int = 2  # pink steps per frame (4 scored the same on real mocap at half the speed: bench)
    posture_cost: float = 0.02  # posture regulariser towards the previous frame [1/rad]
    contact_lock: bool = True  # pin feet in contact to their previous position
    smooth_sigma_frames: float = 0.0  # optional Gaussian smoothing [frames]; off: it costs foot skate (bench)
    foot_frame: str = "shin"  # foot orientation target: "shin" (level, continuous) or "heading" (the old one, bench)
    sole_clearance: bool = True  # swing feet: the G1's own sole kept as high above the floor as the human's
    self_collision: bool = False  # IK keeps the arm capsules off legs, pelvis, torso, other arm (slower: bench)
    floor_z_m: float | None = None  # floor height in the source frame if known; None: estimated per clip
    stab_eps_m: float = 0.1  # CoM-CoP distance under which a frame is stable [m]
    stab_max_unstable_run: int = 100  # a clip fails at this many consecutive unstable frames
    on_error: str = "ledger"  # "ledger" or "raise"

    def __post_init__(self) -> None:
        problems = type_problems(self)
        if self.robot not in CONFIGS:
            problems.append(f"robot must be one of {sorted(CONFIGS)}, got {self.robot!r}")
        if isinstance(self.proportion_blend, (int, float)) and not 0.0 <= self.proportion_blend <= 1.0:
            problems.append(f"proportion_blend must be in [0, 1], got {self.proportion_blend}")
        if isinstance(self.iterations_per_frame, int) and self.iterations_per_frame < 1:
            problems.append("iterations_per_frame must be >= 1")
        if self.foot_frame not in ("shin", "heading"):
            problems.append(f"foot_frame must be 'shin' or 'heading', got {self.foot_frame!r}")
        if self.on_error not in ("ledger", "raise"):
            problems.append(f"on_error must be 'ledger' or 'raise', got {self.on_error!r}")
        if problems:
            raise ConfigError("invalid retarget config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RetargetConfig":
        return from_dict(cls, d, "retarget")

    def fingerprint(self) -> str:
        d = asdict(self)
        d.pop("on_error")
        return digest_of([FORMAT_VERSION, RETARGET_REVISION, sorted(d.items())])[:16]
