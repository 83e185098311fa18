"""The scene in the G1 render (issue 22): a scene clip's G1 panel shows the scene it was retargeted on,
and a flat clip renders the unchanged model."""

from __future__ import annotations

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
from retarget.pipeline import run_retarget
from retarget.render import PANEL, SCENE_GEOM, render_clip, render_model
from retarget.robot import G1
from robomirror.paths import DataLayout

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


def _g1_panel(path) -> np.ndarray:
    frames = decode_mp4_bytes(path.read_bytes())[0]
    assert len(frames) == FRAMES
    return frames[:, :, :PANEL].astype(int)


def test_scene_clip_renders_its_scene(stairs, tmp_path):
    layout, clip = stairs
    on = _g1_panel(render_clip(layout, clip, tmp_path / "on.mp4", max_frames=FRAMES))
    off = _g1_panel(render_clip(layout, clip, tmp_path / "off.mp4", max_frames=FRAMES, draw_scene=False))
    lower = np.abs(on - off)[:, PANEL // 2:]  # the treads are below the camera's look-at (0.6 m)
    assert lower.mean() > 1.0, lower.mean()
    assert (lower.max(-1) > 40).mean() > 0.02  # a visible patch, not codec noise


def test_flat_render_model_is_the_robots():
    robot = G1()
    assert render_model(robot) is robot.mj
    m = render_model(robot, scene_from_boxes(bench_boxes()))
    assert m.nq == robot.mj.nq and m.ngeom == robot.mj.ngeom + 1
    g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, SCENE_GEOM)
    assert g >= 0 and m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0
