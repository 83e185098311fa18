"""Body models: SMPL-X / SMPL parameters -> joint positions.

Two backends behind one interface:
- `SmplxBody`: the `smplx` package with the user's licensed model files (`--body-models DIR`,
  holding `smplx/SMPLX_NEUTRAL.npz` and/or `smpl/SMPL_NEUTRAL.npz`).
- `BuiltinSkeleton`: a licence-free skeleton with the SMPL-X / SMPL kinematic tree and adult
  proportions (rest offsets below, in the SMPL canonical frame: y up, x to the body's left, z
  forward). It has no mesh and no blend shapes; `betas[0]` scales the whole body by
  (1 + 0.06 * betas[0]) and the other betas are ignored. Every output records which one ran.

Both compute joints in the *source* frame; the readers rotate the result into z-up.
Pose convention: rotations about each joint, root rotation about the pelvis, and
`pelvis_pos = pelvis_rest + transl` (as in `smplx`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest.skeletons import SMPL_JOINTS, SMPL_PARENTS, SMPLX_JOINTS, SMPLX_PARENTS
from robomirror.errors import ConfigError
from robomirror.rotations import axis_angle_to_matrix

BUILTIN_NAME = "builtin-skeleton-v1"

# Rest offsets of each joint from its parent [m], SMPL canonical frame (y up, x left, z forward).
_BODY_OFFSETS = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.06, -0.09, 0.0), "right_hip": (-0.06, -0.09, 0.0),
    "spine1": (0.0, 0.11, -0.02),
    "left_knee": (0.04, -0.38, 0.0), "right_knee": (-0.04, -0.38, 0.0),
    "spine2": (0.0, 0.13, 0.0),
    "left_ankle": (-0.01, -0.40, -0.04), "right_ankle": (0.01, -0.40, -0.04),
    "spine3": (0.0, 0.05, 0.02),
    "left_foot": (0.02, -0.06, 0.12), "right_foot": (-0.02, -0.06, 0.12),
    "neck": (0.0, 0.21, -0.03),
    "left_collar": (0.07, 0.12, -0.01), "right_collar": (-0.07, 0.12, -0.01),
    "head": (0.0, 0.09, 0.05),
    "left_shoulder": (0.11, 0.04, -0.01), "right_shoulder": (-0.11, 0.04, -0.01),
    "left_elbow": (0.26, 0.0, -0.02), "right_elbow": (-0.26, 0.0, -0.02),
    "left_wrist": (0.25, 0.0, 0.0), "right_wrist": (-0.25, 0.0, 0.0),
    "left_hand": (0.08, 0.0, 0.0), "right_hand": (-0.08, 0.0, 0.0),
    "jaw": (0.0, -0.03, 0.05),
    "left_eye_smplhf": (0.03, 0.04, 0.08), "right_eye_smplhf": (-0.03, 0.04, 0.08),
}
_FINGER_BASE = {"index": (0.09, 0.0, 0.03), "middle": (0.095, 0.0, 0.01), "pinky": (0.08, 0.0, -0.04),
                "ring": (0.09, 0.0, -0.015), "thumb": (0.03, -0.01, 0.03)}
_FINGER_STEP = {"index": 0.03, "middle": 0.033, "pinky": 0.022, "ring": 0.03, "thumb": 0.028}


def _offset(name: str) -> tuple[float, float, float]:
    if name in _BODY_OFFSETS:
        return _BODY_OFFSETS[name]
    side, rest = name.split("_", 1)
    finger, k = rest[:-1], int(rest[-1])
    sign = 1.0 if side == "left" else -1.0
    if k == 1:
        x, y, z = _FINGER_BASE[finger]
        return (sign * x, y, z)
    return (sign * _FINGER_STEP[finger], 0.0, 0.0)


class BodyModel(Protocol):
    name: str
    joint_names: tuple[str, ...]

    def joints(self, global_orient: np.ndarray, body_pose: np.ndarray, transl: np.ndarray,
               betas: np.ndarray, hand_pose: np.ndarray | None = None,
               jaw_pose: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class BuiltinSkeleton:
    """Forward kinematics of the licence-free skeleton.

    Args of `joints`:
        global_orient: (T, 3) axis-angle [rad]; body_pose: (T, 3 * (J_body - 1)) [rad];
        transl: (T, 3) [m]; betas: (T, B) or (B,); hand_pose: (T, 90) SMPL-X only;
        jaw_pose: (T, 3) SMPL-X only.
    Returns:
        (T, J, 3) float64 joint positions [m] in the source frame.
    """

    model_type: str = "smplx"  # "smplx" (55 joints) or "smpl" (24 joints)

    @property
    def name(self) -> str:
        return f"{BUILTIN_NAME}:{self.model_type}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return SMPLX_JOINTS if self.model_type == "smplx" else SMPL_JOINTS

    @property
    def parents(self) -> tuple[int, ...]:
        return SMPLX_PARENTS if self.model_type == "smplx" else SMPL_PARENTS

    def rest_offsets(self, betas: np.ndarray) -> np.ndarray:
        """(T, J, 3) rest offsets from the parent, scaled by betas[..., 0]."""
        base = np.array([_offset(n) for n in self.joint_names])
        betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))
        scale = 1.0 + 0.06 * betas[:, :1]
        return base[None] * scale[:, :, None]

    def joints(self, global_orient, body_pose, transl, betas, hand_pose=None, jaw_pose=None):
        return self.forward(global_orient, body_pose, transl, betas, hand_pose, jaw_pose)[0]

    def forward(self, global_orient, body_pose, transl, betas, hand_pose=None, jaw_pose=None):
        """(joint positions (T, J, 3) [m], joint rotations in the source world (T, J, 3, 3))."""
        t = global_orient.shape[0]
        n = len(self.joint_names)
        aa = np.zeros((t, n, 3))
        aa[:, 0] = global_orient
        body = np.asarray(body_pose, dtype=np.float64).reshape(t, -1, 3)
        if self.model_type == "smplx":
            aa[:, 1:22] = body[:, :21]
            if jaw_pose is not None:
                aa[:, 22] = jaw_pose
            if hand_pose is not None:
                aa[:, 25:55] = np.asarray(hand_pose, dtype=np.float64).reshape(t, 30, 3)
        else:
            aa[:, 1:24] = body[:, :23]
        rot = axis_angle_to_matrix(aa)
        offsets = np.broadcast_to(self.rest_offsets(betas), (t, n, 3))
        glob_r = np.empty_like(rot)
        pos = np.empty((t, n, 3))
        for j, p in enumerate(self.parents):
            if p < 0:
                glob_r[:, j] = rot[:, j]
                pos[:, j] = transl
            else:
                glob_r[:, j] = glob_r[:, p] @ rot[:, j]
                pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", glob_r[:, p], offsets[:, j])
        return pos, glob_r


class SmplxBody:
    """The `smplx` package on real (licensed) model files; joints are its first 55 / 24."""

    def __init__(self, model_dir: Path, model_type: str = "smplx", gender: str = "neutral") -> None:
        import smplx  # heavy (torch): imported only when real model files are used

        model_dir = Path(model_dir)
        sub = model_dir / model_type
        found = sorted(sub.glob("*.npz")) if sub.is_dir() else []
        if not found:
            raise ConfigError(
                f"--body-models {model_dir}: expected {model_type}/{model_type.upper()}_NEUTRAL.npz "
                f"(an .npz model file; convert an official .pkl once with `python -m ingest convert-body-model "
                f"FILE.pkl --out {model_dir}/{model_type}/{model_type.upper()}_NEUTRAL.npz`)"
            )
        self.model_type = model_type
        self.path = sub / f"{model_type.upper()}_{gender.upper()}.npz"
        if not self.path.exists():
            self.path = found[0]
        self._model = smplx.create(str(model_dir), model_type=model_type, gender=gender,
                                   ext="npz", use_pca=False, num_betas=10, flat_hand_mean=True)
        self.joint_names = SMPLX_JOINTS if model_type == "smplx" else SMPL_JOINTS
        self.name = f"{model_type}:{self.path.name}"

    def joints(self, global_orient, body_pose, transl, betas, hand_pose=None, jaw_pose=None):
        import torch

        t = global_orient.shape[0]
        f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        betas = np.broadcast_to(np.atleast_2d(betas)[:, :10], (t, 10))
        kw = dict(global_orient=f(global_orient), body_pose=f(body_pose), transl=f(transl),
                  betas=f(betas))
        if self.model_type == "smplx":
            hp = np.zeros((t, 90)) if hand_pose is None else hand_pose
            kw.update(left_hand_pose=f(hp[:, :45]), right_hand_pose=f(hp[:, 45:]),
                      jaw_pose=f(np.zeros((t, 3)) if jaw_pose is None else jaw_pose),
                      leye_pose=f(np.zeros((t, 3))), reye_pose=f(np.zeros((t, 3))),
                      expression=f(np.zeros((t, 10))))
        with torch.no_grad():
            out = self._model(**kw, return_verts=False).joints.numpy()
        return out[:, : len(self.joint_names)].astype(np.float64)


def load_body_model(model_type: str, body_models_dir: Path | None) -> BodyModel:
    """The real smplx model when a directory with model files is given, else the built-in one."""
    if model_type not in ("smplx", "smpl"):
        raise ConfigError(f"model_type must be 'smplx' or 'smpl', got {model_type!r}")
    if body_models_dir is not None:
        return SmplxBody(Path(body_models_dir), model_type)
    return BuiltinSkeleton(model_type)
