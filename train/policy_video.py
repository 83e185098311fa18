"""An mp4 of a policy's G1 (left) beside its reference motion (right), rendered from MuJoCo states."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from ingest.video import encode_mp4
from retarget.render import CAM_AZIMUTH_DEG, CAM_DISTANCE_M, CAM_ELEVATION_DEG, PANEL, _renderer
from robomirror.atomic import publish_bytes
from train.env.actuation import ModelIndex
from train.env.motion_library import MotionLibrary


def render_policy_clip(model: mujoco.MjModel, qpos_policy: np.ndarray, library: MotionLibrary, clip: int,
                       out: Path, stride: int = 2) -> Path:
    ix = ModelIndex.of(model)
    renderer = _renderer(model, PANEL)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    cam = mujoco.MjvCamera()
    cam.distance, cam.azimuth, cam.elevation = CAM_DISTANCE_M, CAM_AZIMUTH_DEG, CAM_ELEVATION_DEG
    d = mujoco.MjData(model)
    frames = []
    for t in range(0, len(qpos_policy), stride):
        ref = library.frame(np.array([clip]), np.array([t]))
        panels = []
        for q in (qpos_policy[t], None):
            if q is None:
                d.qpos[:3], d.qpos[3:7] = ref["root_pos"][0], ref["root_quat"][0]
                d.qpos[ix.qpos_adr] = ref["joint_pos"][0]
            else:
                d.qpos[:] = q
            mujoco.mj_forward(model, d)
            cam.lookat[:] = (d.qpos[0], d.qpos[1], 0.6)
            renderer.update_scene(d, camera=cam)
            panels.append(renderer.render())
        frames.append(np.concatenate(panels, axis=1))
    renderer.close()
    publish_bytes(out, encode_mp4(frames, 50.0 / stride))
    return out
