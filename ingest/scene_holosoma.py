"""Reader of holosoma's climbing mocap layout: human joint positions with the boxes they climb.

Layout, as the `holosoma-retargeting` wheel ships it (`demo_data/climb/`) and its
`examples/robot_retarget.py` reads it (task "climbing", data format "mocap"):

    <root>/<sequence>/<sequence>_joint_positions_f<first>-<last>.npy   (T, 53, 3) float, z-up, metres
    <root>/<sequence>/multi_boxes.obj      the scene: every box as one triangle mesh, same frame, metres
    <root>/<sequence>/box_models/box<k>.obj, box_assets.xml, box_body.xml, multi_boxes.urdf (the same
                                           boxes per file and as MJCF/URDF; not read: multi_boxes.obj has them all)

The mocap runs at 120 Hz: holosoma's reader keeps every 4th frame ("MOCAP-specific downsample factor")
to retarget at 30 Hz. The floor is z = 0 (the boxes' bottoms are at 0). Holosoma scales the boxes by
the robot/human height ratio together with the motion; here the scene stays in the human's metres and
retargeting scales it with the motion (retarget/scene_ground.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ingest.checks import check_array, load_npy
from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.resample import interp_linear, uniform_index
from ingest.scene import check_scene, check_scene_units, load_mesh_file, scene_from_mesh
from ingest.sequence import HumanSequence, SourceRef
from robomirror.errors import SourceError

DATASET = "holosoma_climb"
SOURCE_FPS = 120.0  # robot_retarget.py: downsample 4 -> 30 Hz
SCENE_FILE = "multi_boxes.obj"  # robot_retarget.py: object name "multi_boxes" for the climbing task
MOTION_GLOB = "*_joint_positions*.npy"
# the mocap's joint order (BVH-style names), as retarget/bench.py reads the wheel's files
HOLOSOMA_MOCAP_JOINTS = (
    "Hips", "Spine", "Spine1", "Neck", "Head", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
    *[f"LeftHand{f}{i}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for i in (1, 2, 3)],
    "RightShoulder", "RightArm", "RightForeArm", "RightHand",
    *[f"RightHand{f}{i}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for i in (1, 2, 3)],
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase",
    "LeftFootMod", "RightFootMod",
)
FOOT_JOINTS = ("LeftFoot", "LeftToeBase", "RightFoot", "RightToeBase")
_FRAMES = re.compile(r"_f(\d+)-(\d+)$")


def discover_holosoma_climb(root: Path) -> list[SourceRef]:
    """One source per sequence folder holding a joint-positions .npy (the scene file is optional)."""
    refs = []
    for p in sorted(Path(root).iterdir()):
        if p.name.startswith("."):
            continue
        motions = sorted(p.glob(MOTION_GLOB)) if p.is_dir() else []
        if len(motions) != 1:
            refs.append(SourceRef.unusable(DATASET, p, root, Reason.NOT_A_SOURCE.value,
                                           f"expected a folder with one {MOTION_GLOB} file, found "
                                           f"{len(motions) if p.is_dir() else 'a file'}"))
            continue
        files = [("motion", str(motions[0]))]
        if (p / SCENE_FILE).is_file():
            files.append(("scene", str(p / SCENE_FILE)))
        refs.append(SourceRef(DATASET, "climb", p.name, str(root), tuple(files), "holosoma_climb"))
    return refs


def read_holosoma_climb(ref: SourceRef, cfg: IngestConfig) -> HumanSequence:
    files = dict(ref.files)
    path = files["motion"]
    raw = load_npy(path)
    if raw.ndim != 3:
        raise SourceError(Reason.BAD_SHAPE, path, f"expected (T, {len(HOLOSOMA_MOCAP_JOINTS)}, 3), found {raw.shape}")
    joints = check_array(raw.reshape(len(raw), -1), path, "joint positions", (len(HOLOSOMA_MOCAP_JOINTS) * 3,))
    joints = joints.reshape(len(raw), -1, 3)
    times = np.arange(len(joints)) / SOURCE_FPS
    _, idx = uniform_index(times, cfg.fps)
    pos = interp_linear(joints, idx)
    scene = None
    if "scene" in files:
        v, f = load_mesh_file(files["scene"])
        check_scene_units(v.min(0), v.max(0), files["scene"], pos)  # before rasterising: a mm mesh -> 10^6 x grid
        scene = scene_from_mesh(v, f, "mesh", floor_z_m=0.0, source=Path(files["scene"]).name,
                                around_xy_m=pos[:, 0, :2])
        feet = tuple([HOLOSOMA_MOCAP_JOINTS.index(j) for j in FOOT_JOINTS if j.startswith(s)] for s in ("Left", "Right"))
        check_scene(scene, files["scene"], pos, feet, HOLOSOMA_MOCAP_JOINTS.index("Hips"), cfg.fps)
    m = _FRAMES.search(Path(path).stem)
    notes = {"source_layout": "holosoma_climb", "source_frames": [int(m[1]), int(m[2])] if m else None}
    return HumanSequence(ref=ref, view="motion_only", fps=cfg.fps, t0_s=0.0, joint_names=HOLOSOMA_MOCAP_JOINTS,
                         joint_pos_w=pos.astype(np.float32), params={}, source_frame_index=idx, texts=[],
                         video=None, body_model="none", body_source="holosoma_mocap", source_fps=SOURCE_FPS,
                         notes=notes, scene=scene)
