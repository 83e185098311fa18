"""The scene in the renders (issue 22): a scene clip's G1 panel and human panel (the human-vs-robot video of
`python -m retarget render` and of the nearest page's previews) show the scene it was retargeted on, and so
do both panels of a policy video (train/policy_video.py); a flat clip renders the unchanged model and no
scene. Scene pixels are told by their colour: the scene's brown (R > G > B, G - B clearly positive),
which neither the grey robot, the bluish floor, the grey human panel nor its red and blue bones have."""

from __future__ import annotations

import dataclasses
import io
import json

import mujoco
import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.config import IngestConfig
from ingest.pipeline import run_ingest
from ingest.sample.scenes import bench_boxes, write_scene_sequence
from ingest.scene import scene_from_boxes
from ingest.video import decode_mp4_bytes
from retarget.config import RetargetConfig
from retarget.interop import load_clip_motion
from retarget.pipeline import run_retarget
from retarget.render import (
    PANEL,
    RENDER_REVISION,
    SCENE_GEOM,
    _camera_eye,
    _clip_scene,
    _ingest_sample,
    render_clip,
    render_model,
)
from retarget.robot import G1
from robomirror.draw import look_at
from robomirror.paths import DataLayout
from train.env.actuation import SIMS, build_model
from train.env.motion_library import Clip, MotionLibrary, clip_scene
from train.env.scene import SCENE_GEOM_PREFIX
from train.env.synthetic import sway_clip
from train.policy_video import HIDDEN_GROUP, clip_render_model, render_policy_clip
from train.sim2sim import evaluate

FRAMES = 2


@pytest.fixture(scope="module")
def stairs(tmp_path_factory) -> tuple[DataLayout, str]:
    src = tmp_path_factory.mktemp("scene_src")
    write_scene_sequence(src, "stairs")
    layout = DataLayout(tmp_path_factory.mktemp("scene_root"))
    run_ingest(layout, {"holosoma_climb": src}, IngestConfig(clip_frames=60, stride_frames=60, min_frames=60),
               executor="serial", progress=False)
    run_retarget(layout, RetargetConfig(on_error="raise"), executor="serial", progress=False)
    rows = [r for m in sorted(layout.root.glob("shards/retarget/*/manifest.parquet")) for r in pq.read_table(m).to_pylist()]
    return layout, sorted(r["clip_id"] for r in rows if r["scene_kind"] == "stairs")[-1]  # the last: on the treads


def _frames(path) -> np.ndarray:
    frames = decode_mp4_bytes(path.read_bytes())[0]
    assert len(frames) == FRAMES
    return frames.astype(int)


def scene_pixels(img: np.ndarray) -> np.ndarray:
    """(..., H, W) bool: pixels of the scene's brown (SCENE_RGBA / the env's hfield colour, 0.62 / 0.55 / 0.45,
    however lit)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return (r > g) & (g > b) & (r - g < 2 * (g - b)) & (g - b > 8)


@pytest.fixture(scope="module")
def renders(stairs, tmp_path_factory):
    layout, clip = stairs
    out = tmp_path_factory.mktemp("renders")
    on = render_clip(layout, clip, out / "on.mp4", max_frames=FRAMES)
    off = render_clip(layout, clip, out / "off.mp4", max_frames=FRAMES, draw_scene=False)
    return _frames(on), _frames(off), on


def test_scene_clip_renders_its_scene(renders):
    on, off = (f[:, :, :PANEL] for f in renders[:2])
    lower = np.abs(on - off)[:, PANEL // 2:]  # the treads are below the camera's look-at (0.6 m)
    assert lower.mean() > 1.0, lower.mean()
    assert (lower.max(-1) > 40).mean() > 0.02  # a visible patch, not codec noise
    assert scene_pixels(on).mean() > 0.03 and scene_pixels(off).mean() < 0.002


def test_the_human_panel_draws_the_scene_where_it_projects(stairs, renders):
    """The human panel (the person's scale and frame, the panel's own camera) shows the scene's colour, inside
    the box the stairs' vertices project to through that camera, and never when the scene is off."""
    layout, clip = stairs
    on, off, path = renders
    human_on, human_off = on[:, :, PANEL:2 * PANEL], off[:, :, PANEL:2 * PANEL]
    assert scene_pixels(human_off).mean() < 0.01  # bones and background are not brown
    _, report = load_clip_motion(layout, clip)
    scene = _clip_scene(layout, report, robot_scale=False)  # as ingested: the person's scale
    human = np.load(io.BytesIO(_ingest_sample(layout, clip)["human.npz"]))["joint_pos_w"]
    fovy = float(G1().mj.vis.global_.fovy)
    f = 0.5 * PANEL / np.tan(np.radians(fovy) / 2)
    for t in range(FRAMES):
        mask = scene_pixels(human_on[t])
        assert mask.mean() > 0.03, (t, mask.mean())
        lookat = np.array([human[t, 0, 0], human[t, 0, 1], 0.8])
        eye = _camera_eye(lookat)
        cam = (scene.vertices_m - eye) @ look_at(eye, lookat).T
        uv = cam[:, :2] / cam[:, 2:3] * f + PANEL / 2
        (u0, v0), (u1, v1) = np.floor(uv.min(0)).clip(0, PANEL), np.ceil(uv.max(0)).clip(0, PANEL)
        inside = np.zeros_like(mask)
        inside[int(v0):int(v1) + 1, int(u0):int(u1) + 1] = True
        assert (mask & inside).sum() >= 0.97 * mask.sum(), (t, (mask & ~inside).sum(), mask.sum())
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["render_revision"] == RENDER_REVISION and side["scene_drawn"] is True


@pytest.fixture(scope="module")
def played(stairs):
    """The stairs clip and a flat clip replayed (reference through the PD) in the env, states recorded."""
    layout, clip = stairs
    motion, report = load_clip_motion(layout, clip)
    lib = MotionLibrary([Clip(clip, motion, np.zeros(256, np.float32), {"latents": "vae"}, clip_scene(layout, report)),
                         sway_clip()], build_model(SIMS["train"]))
    return lib, evaluate(lambda o: o["residual_base"], lib, "train", record=True), (clip, motion, clip_scene(layout, report))


def test_policy_video_draws_a_scene_clips_scene_in_both_panels(played, tmp_path):
    lib, results, _ = played
    model = build_model(SIMS["train"], scenes=lib.scenes)  # as train.policy's videos build it
    frames = [_frames(render_policy_clip(model, r.qpos[:2 * FRAMES], lib, i, tmp_path / f"{i}.mp4"))
              for i, r in enumerate(results)]
    stairs, flat = frames
    for panel in (stairs[:, :, :PANEL], stairs[:, :, PANEL:]):  # the policy's G1 and the reference's
        assert scene_pixels(panel).mean() > 0.03, scene_pixels(panel).mean()
        assert scene_pixels(panel[:, : PANEL // 3]).mean() < scene_pixels(panel[:, PANEL // 2:]).mean()  # below
    assert scene_pixels(flat).mean() < 0.002
    with pytest.raises(ValueError, match="build_model"):  # a scene clip on a model without its scene
        render_policy_clip(build_model(SIMS["train"]), results[0].qpos[:2], lib, 0, tmp_path / "no.mp4")


def test_policy_video_model_shows_only_the_clips_own_scene(played):
    _, _, (clip, motion, scene) = played
    moved = dataclasses.replace(scene, origin_xy_m=(scene.origin_xy_m[0] + 5.0, scene.origin_xy_m[1]),
                                vertices_m=scene.vertices_m + np.float32([5.0, 0.0, 0.0]))  # another scene
    latent = np.zeros(256, np.float32)
    two = MotionLibrary([Clip("a", motion, latent, {}, scene), Clip("b", motion, latent, {}, moved), sway_clip()],
                        build_model(SIMS["train"]))
    assert len(two.scenes) == 2
    model = build_model(SIMS["train"], scenes=two.scenes)
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"{SCENE_GEOM_PREFIX}{k}") for k in range(2)]
    for clip in range(3):
        m = clip_render_model(model, two, clip)
        shown = [m.geom_group[g] != HIDDEN_GROUP for g in ids]
        assert shown == [two.scene_of_clip[clip] == k for k in range(2)], (clip, shown)
    assert (model.geom_group[ids] != HIDDEN_GROUP).all()  # the env's model is left as it was


def test_flat_render_model_is_the_robots():
    robot = G1()
    assert render_model(robot) is robot.mj
    m = render_model(robot, scene_from_boxes(bench_boxes()))
    assert m.nq == robot.mj.nq and m.ngeom == robot.mj.ngeom + 1
    g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, SCENE_GEOM)
    assert g >= 0 and m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0
