"""An mp4 of a policy's G1 (left) beside its reference motion (right), rendered from MuJoCo states.

A clip performed on a scene (issue 22) is drawn on it in both panels: the model is the env's, built with
the library's scenes (`build_model(sim, scenes=library.scenes)`: one height field per scene, the geometry
the worlds collide with), and every scene but the clip's own is hidden (put in a geom group the renderer
does not draw, on a copy of the model). The shown one is drawn RENDER_LIFT_M higher, so its cells at
floor height do not flicker against the floor plane (drawing only: the states come from the env). A flat
clip shows no scene.
"""

from __future__ import annotations

import copy
from pathlib import Path

import mujoco
import numpy as np

from ingest.video import encode_mp4
from retarget.render import CAM_AZIMUTH_DEG, CAM_DISTANCE_M, CAM_ELEVATION_DEG, PANEL, _renderer
from robomirror.atomic import publish_bytes
from train.env.actuation import ModelIndex
from train.env.motion_library import MotionLibrary
from train.env.scene import SCENE_GEOM_PREFIX

HIDDEN_GROUP = 5  # MjvOption's default draws geom groups 0-2 only
RENDER_LIFT_M = 0.002


def clip_render_model(model: mujoco.MjModel, library: MotionLibrary, clip: int) -> mujoco.MjModel:
    """`model` showing clip `clip`'s scene only: a copy with the other scenes' geoms in HIDDEN_GROUP and its own
    lifted RENDER_LIFT_M (the model itself for a flat clip of a model without scenes). A scene clip needs the
    scene in the model: refused otherwise."""
    scene = int(library.scene_of_clip[clip])
    geoms = {k: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"{SCENE_GEOM_PREFIX}{k}")
             for k in range(len(library.scenes))}
    if scene >= 0 and geoms[scene] < 0:
        raise ValueError(f"clip {library.clip_ids[clip]} plays on a {library.scenes[scene].kind} scene the model lacks; "
                         "build it with train.env.actuation.build_model(sim, scenes=library.scenes)")
    others = [g for k, g in geoms.items() if k != scene and g >= 0]
    if scene < 0 and not others:
        return model
    out = copy.deepcopy(model)
    out.geom_group[others] = HIDDEN_GROUP
    if scene >= 0:
        out.geom_pos[geoms[scene], 2] += RENDER_LIFT_M
    return out


def render_policy_clip(model: mujoco.MjModel, qpos_policy: np.ndarray, library: MotionLibrary, clip: int,
                       out: Path, stride: int = 2) -> Path:
    """qpos_policy: (T, nq) of the world that played clip `clip`, in `model`'s layout (scenes add no joints)."""
    model = clip_render_model(model, library, clip)
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
