"""Debug video of one clip: the G1 (MuJoCo offscreen), the human skeleton, and the source video,
side by side on one time axis.

A scene clip (issue 22) is drawn on its scene in both motion panels: in the G1 panel the clip's mesh
(`ingest.scene.Scene` vertices_m/faces), scaled by the clip's `root_scale` as retargeting scaled it, is
added to the rendered model as one visual-only mesh geom (flat clips render the unchanged model); in the
human panel the mesh as ingested (the person's own scale and frame) is rendered by MuJoCo through the
panel's own camera and pasted under the skeleton (`HumanSceneLayer`; the skeleton is drawn over it, so a
limb behind a step still shows).

MuJoCo renders through EGL (software Mesa works without a GPU) or OSMesa; shadows and reflections
are off for speed. `MUJOCO_GL` picks the backend when set.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from ingest.scene_holosoma import HOLOSOMA_MOCAP_JOINTS
from ingest.skeletons import SMPL_BODY_22, SMPL_BODY_22_PARENTS, XSENS_PARENTS, XSENS_SEGMENTS
from ingest.video import decode_mp4_bytes, encode_mp4
from retarget.interop import load_clip_motion, robot_for_motion
from robomirror.draw import draw_capsule, look_at
from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout
from robomirror.shards import find_sample

RENDER_REVISION = 2  # 2: the human panel draws the scene (a cached preview of an older revision is stale)
SCENE_GEOM = "scene_mesh"
SCENE_RGBA = (0.62, 0.55, 0.45, 1.0)
PANEL = 240
CAM_DISTANCE_M = 3.2
CAM_AZIMUTH_DEG = 150.0
CAM_ELEVATION_DEG = -12.0


class RenderError(RoboMirrorError):
    """No OpenGL backend for MuJoCo, or the clip is missing."""


def _renderer(model, size: int):
    import mujoco

    backend = os.environ.get("MUJOCO_GL", "(unset)")
    try:
        return mujoco.Renderer(model, size, size)
    except Exception as e:  # noqa: BLE001 - turn any GL failure into one clear message
        raise RenderError(f"MuJoCo offscreen rendering failed with MUJOCO_GL={backend}: {type(e).__name__}: {e}. "
                          "It needs EGL (Debian: libegl1 libgl1-mesa-dri) or OSMesa (libosmesa6, MUJOCO_GL=osmesa)") from e


def render_model(robot, scene=None):
    """The MuJoCo model to draw: the robot's own (`robot.mj`) without a scene; with one (robot-scale,
    `retarget.scene_ground.robot_scene`), the same robot plus the scene's mesh as a world geom that
    collides with nothing (the robot's qpos layout is unchanged: the scene has no joints)."""
    if scene is None:
        return robot.mj
    from retarget.g1 import scene_spec

    spec = scene_spec(robot.xml)
    _scene_mesh_spec(spec, scene)
    return spec.compile()


def _scene_mesh_spec(spec, scene) -> None:
    import mujoco

    spec.add_mesh(name=SCENE_GEOM, uservert=np.asarray(scene.vertices_m, np.float32).ravel().tolist(),
                  userface=np.asarray(scene.faces, np.int32).ravel().tolist(),
                  inertia=mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL)  # an open surface (a slope) has no volume
    spec.worldbody.add_geom(name=SCENE_GEOM, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=SCENE_GEOM,
                            contype=0, conaffinity=0, rgba=list(SCENE_RGBA))


class HumanSceneLayer:
    """The human panel's scene: a model holding only the scene's mesh (human scale, the motion's frame),
    rendered with the panel's camera (`_camera_eye`, the same vertical field of view), colour and geom
    segmentation; `paste` puts the scene's pixels onto the panel's background."""

    def __init__(self, scene, fovy_deg: float) -> None:
        import mujoco

        spec = mujoco.MjSpec()
        _scene_mesh_spec(spec, scene)
        self.model = spec.compile()
        self.model.vis.global_.fovy = fovy_deg
        self.model.vis.headlight.ambient[:], self.model.vis.headlight.diffuse[:] = 0.45, 0.55  # no other light
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)
        self.renderer = _renderer(self.model, PANEL)
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        self.cam = mujoco.MjvCamera()
        self.cam.distance, self.cam.azimuth, self.cam.elevation = CAM_DISTANCE_M, CAM_AZIMUTH_DEG, CAM_ELEVATION_DEG

    def paste(self, img: np.ndarray, lookat: np.ndarray) -> np.ndarray:
        self.cam.lookat[:] = lookat
        self.renderer.update_scene(self.data, camera=self.cam)
        rgb = self.renderer.render()
        self.renderer.enable_segmentation_rendering()
        self.renderer.update_scene(self.data, camera=self.cam)
        covered = self.renderer.render()[..., 0] >= 0  # geom id per pixel, -1 where nothing is drawn
        self.renderer.disable_segmentation_rendering()
        img[covered] = rgb[covered]
        return img

    def close(self) -> None:
        self.renderer.close()


def _clip_scene(layout: DataLayout, report: dict, robot_scale: bool = True):
    """The scene a clip was retargeted on (its retarget.json `scene`), or None: at the robot's scale (as the
    G1 and the env see it), or as ingested (the person's scale, for the human panel)."""
    sc = report.get("scene")
    if not sc:
        return None
    from ingest.scene import load_scene
    from retarget.scene_ground import robot_scene

    scene = load_scene(layout.root, sc["scene_id"])
    return robot_scene(scene, float(sc["scale"])) if robot_scale else scene


def _camera_eye(lookat: np.ndarray) -> np.ndarray:
    az, el = np.radians(CAM_AZIMUTH_DEG), np.radians(CAM_ELEVATION_DEG)
    forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return lookat - CAM_DISTANCE_M * forward


def _mocap_parents() -> dict[str, str]:
    """Body bones of holosoma's climbing mocap skeleton (`HOLOSOMA_MOCAP_JOINTS`: Hips, Spine, LeftUpLeg, ...)
    as child -> parent names; the fingers and the extra FootMod points are not drawn."""
    out = {"Spine": "Hips", "Spine1": "Spine", "Neck": "Spine1", "Head": "Neck"}
    for s in ("Left", "Right"):
        out |= {f"{s}Shoulder": "Spine1", f"{s}Arm": f"{s}Shoulder", f"{s}ForeArm": f"{s}Arm",
                f"{s}Hand": f"{s}ForeArm", f"{s}UpLeg": "Hips", f"{s}Leg": f"{s}UpLeg", f"{s}Foot": f"{s}Leg",
                f"{s}ToeBase": f"{s}Foot"}
    return out


def _skeleton(names: tuple[str, ...]) -> list[tuple[int, int]]:
    if names[:22] == SMPL_BODY_22:
        return [(SMPL_BODY_22_PARENTS[j], j) for j in range(1, 22)]
    if names == XSENS_SEGMENTS:
        return [(XSENS_PARENTS[j], j) for j in range(1, len(names))]
    if names == HOLOSOMA_MOCAP_JOINTS:
        return [(names.index(p), names.index(c)) for c, p in _mocap_parents().items()]
    return []


def _draw_human(joints: np.ndarray, names: tuple[str, ...], bones, lookat: np.ndarray, fovy_deg: float,
                scene: HumanSceneLayer | None = None) -> np.ndarray:
    img = np.full((PANEL, PANEL, 3), 235, np.uint8)
    img[int(PANEL * 0.62):] = 205  # a floor band, for orientation only
    if scene is not None:
        scene.paste(img, lookat)
    eye = _camera_eye(lookat)
    r_wc = look_at(eye, lookat)
    f = 0.5 * PANEL / np.tan(np.radians(fovy_deg) / 2)
    cam = (joints - eye) @ r_wc.T
    uv = cam[:, :2] / np.maximum(cam[:, 2:3], 1e-3) * f + PANEL / 2
    for p, c in sorted(bones, key=lambda pc: -(cam[pc[0], 2] + cam[pc[1], 2])):
        side = names[c].lower()
        colour = (60, 110, 230) if side.startswith(("left", "l_")) else (230, 80, 60) if side.startswith(("right", "r_")) else (90, 90, 90)
        draw_capsule(img, uv[p], uv[c], 3.0, colour)
    return img


def _ingest_sample(layout: DataLayout, clip_id: str) -> dict[str, bytes]:
    members = find_sample(layout.root, "ingest", clip_id)
    if members is not None:
        return members
    raise RenderError(f"clip {clip_id} is not in the ingest manifests under {layout.root}")


def first_clip(layout: DataLayout) -> str:
    for manifest in sorted(layout.root.glob("shards/retarget/*/manifest.parquet")):
        ids = pq.read_table(manifest, columns=["clip_id"]).column("clip_id").to_pylist()
        if ids:
            return ids[0]
    raise RenderError(f"no retargeted clip under {layout.root}; run `make shards` first")


def render_clip(layout: DataLayout, clip_id: str | None = None, out: Path | None = None,
                robot_xml: str | None = None, max_frames: int | None = None, stride: int = 1,
                draw_scene: bool = True) -> Path:
    """G1 | human joints | source video, side by side, as an mp4 at the clip's rate / `stride`
    (software GL renders ~10 frames/s here: a stride of 3 makes a preview 3x faster). A scene clip's
    G1 and human panels show its scene unless `draw_scene` is False."""
    import mujoco

    clip_id = clip_id or first_clip(layout)
    motion, report = load_clip_motion(layout, clip_id)
    sample = _ingest_sample(layout, clip_id)
    human = np.load(io.BytesIO(sample["human.npz"]), allow_pickle=False)
    names = tuple(str(n) for n in human["joint_names"])
    # a motion-only clip (Motion-X v1, mocap subsets) has no source video: that panel stays grey
    video, vtimes = (decode_mp4_bytes(sample["video.mp4"])[:2] if "video.mp4" in sample
                     else (np.full((1, PANEL, PANEL, 3), 64, np.uint8), np.zeros(1)))
    robot = robot_for_motion(motion, robot_xml)
    model = render_model(robot, _clip_scene(layout, report) if draw_scene else None)
    data = mujoco.MjData(model)
    renderer = _renderer(model, PANEL)
    fovy = float(model.vis.global_.fovy)
    human_scene = _clip_scene(layout, report, robot_scale=False) if draw_scene else None
    layer = HumanSceneLayer(human_scene, fovy) if human_scene is not None else None
    opt = mujoco.MjvOption()
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    cam = mujoco.MjvCamera()
    cam.distance, cam.azimuth, cam.elevation = CAM_DISTANCE_M, CAM_AZIMUTH_DEG, CAM_ELEVATION_DEG
    qpos = robot.qpos(motion.root_pos_w, motion.root_quat_wxyz, motion.joint_pos)
    bones = _skeleton(names)
    frames = []
    for t in range(0, min(motion.n_frames, max_frames or motion.n_frames), max(1, stride)):
        data.qpos[:] = qpos[t]
        mujoco.mj_forward(model, data)
        cam.lookat[:] = (qpos[t, 0], qpos[t, 1], 0.6)
        renderer.update_scene(data, camera=cam, scene_option=opt)
        g1 = renderer.render()
        jt = human["joint_pos_w"][t].astype(np.float64)
        person = _draw_human(jt, names, bones, np.array([jt[0, 0], jt[0, 1], 0.8]), fovy, layer)
        vi = int(np.argmin(np.abs(vtimes - t / motion.fps)))
        src = np.asarray(Image.fromarray(video[vi]).resize((PANEL, PANEL), Image.NEAREST))
        frames.append(np.concatenate([g1, person, src], axis=1))
    renderer.close()
    if layer is not None:
        layer.close()
    out = out or layout.root / "renders" / f"{clip_id}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    from robomirror.atomic import publish_bytes

    publish_bytes(out, encode_mp4(frames, motion.fps / max(1, stride)))
    publish_bytes(out.with_suffix(".json"), json.dumps({"clip_id": clip_id, "panels": ["G1 (MuJoCo)", "human joints",
                                                        "source video"], "render_revision": RENDER_REVISION,
                                                        "scene_drawn": bool(draw_scene and report.get("scene")),
                                                        "metrics": report["metrics"],
                                                        "stability": report["stability"]}, indent=1).encode())
    return out
