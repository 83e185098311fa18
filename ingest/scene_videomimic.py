"""Reader of VideoMimic's real-to-sim results: the person's SMPL trajectory with the mesh of the place.

VideoMimic (arXiv 2505.03729, github.com/hongsukchoi/VideoMimic, `real2sim/`) reconstructs, per video,
the environment and the person in one world. Its stage 3 (`stage3_postprocessing/gravity_calibration.py`
and `mesh_generation.py`) writes one folder per video segment:

    <root>[/<capture group>]/megahunter_<sfm>_reconstruction_results_<video>_cam01_frame_<a>_<b>_subsample_<k>/
        gravity_calibrated_megahunter.h5   the SMPL trajectory (read here), plus the per-frame point maps
        gravity_calibrated_keypoints.h5    the calibrated people as 45 SMPL joints: `joints/<person id>` names
                                           who was calibrated (joints themselves not read: they come from params)
        background_mesh.obj                the environment, one triangle mesh (the scene)
        background_*_colored_pointcloud.ply, retarget_poses_g1[_multiperson].h5   (not read)

`gravity_calibrated_megahunter.h5` (written by their `save_dict_to_hdf5`: nested groups, float arrays
as float32 datasets, strings and lists as attributes of the root named by their full path):

    our_pred_humans_smplx_params/<person id>/global_orient   (T, 1, 3, 3) rotation matrix, world <- SMPL root
    our_pred_humans_smplx_params/<person id>/body_pose       (T, 23, 3, 3) SMPL joint rotations
    our_pred_humans_smplx_params/<person id>/betas           (T, 10) (or (10,)) SMPL shape
    our_pred_humans_smplx_params/<person id>/root_transl     (T, 1, 3) [m] the pelvis *joint* in the world
                                                              (not smplx's `transl`: their vertices are
                                                              `v - joints[:, :1] + root_transl`)
    person_frame_info_list/<person id>                        (T, 1) bytes: the image name of each row
    our_pred_world_cameras_and_structure/<image name>/...     point maps, cameras (not read)

Despite the group's name the body is SMPL (their `smplx.create(model_type='smpl', gender='male')`).
The world is gravity-aligned and z-up (`get_world_rotation`: GeoCalib roll/pitch of the first camera's
y-down frame, then a fixed turn to z-up), metres after MegaHunter's human-scale fit, origin at the first camera:
the floor is not at z = 0 (about a camera height below it). The mesh is in the same frame. Rows are
the frames the person was found in, every k-th image of the video (`_subsample_<k>`); the video rate
is not stored: their retargeting assumes 30 / k fps, their simulation configs override it (60 for
their own captures). Here each row's time is its image number / the video rate, 30 unless
`<root>/videomimic_fps.csv` (columns `folder,video_fps`) names the folder.

Into our model: SMPL params -> the SMPL body model (`--body-models`, or the built-in skeleton), joints
in their world; the mesh -> a Scene of representation "mesh"; both checked (ingest/scene.py: metres,
z-up, the feet on the surface), then moved together so that the lowest surface the person stands on is
z = 0 (`floor_shift_m` in the notes). One sequence per person id. Stage 3 rotates only the people it
was asked for (the first without `--multihuman`) and leaves the others in the camera frame: a person
the keypoints file does not list is one ledger row, not a motion in the wrong frame. Their simulation
reads only `retarget_poses_g1.h5` + `background_mesh.obj`; a folder with only those is one ledger row.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ingest.body_model import BodyModel
from ingest.checks import check_array, check_increasing, check_same_length
from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.resample import interp_axis_angle, interp_linear, uniform_index
from ingest.scene import Scene, check_scene, check_scene_units, classify, load_mesh_file, scene_from_mesh
from ingest.sequence import HumanSequence, SourceRef
from robomirror.errors import ConfigError, SourceError
from robomirror.rotations import matrix_to_axis_angle

DATASET = "videomimic"
H5PY_PIN = "h5py==3.16.0"
MOTION_FILE = "gravity_calibrated_megahunter.h5"
KEYPOINTS_FILE = "gravity_calibrated_keypoints.h5"  # joints/<person id>: the people stage 3 calibrated
SCENE_FILE = "background_mesh.obj"
G1_FILE = "retarget_poses_g1.h5"  # their retargeted robot motion: found, not read
FPS_TABLE = "videomimic_fps.csv"  # folder,video_fps
DEFAULT_VIDEO_FPS = 30.0  # robot_motion_retargeting.py: "fps": 30.0 / subsample_factor
HUMANS = "our_pred_humans_smplx_params"
FRAMES = "person_frame_info_list"
PARAM_SHAPES = {"global_orient": (1, 3, 3), "body_pose": (23, 3, 3), "root_transl": (1, 3), "betas": (10,)}
PERSON_SEP = "__person_"
FEET = (("left_ankle", "left_foot"), ("right_ankle", "right_foot"))
STILL_M_PER_S = 0.3  # a foot slower than this stands on something (as ingest/scene.py)
FLOOR_PERCENTILE = 5.0  # the floor: this percentile of the surface under the standing feet
_FOLDER = re.compile(r"^megahunter_(?P<sfm>[a-z0-9]+)_reconstruction_results_(?P<video>.+)_cam\d+"
                     r"_frame_(?P<a>\d+)_(?P<b>\d+)_subsample_(?P<k>\d+)$")


def _h5py():
    try:
        import h5py
    except ImportError as e:
        raise ConfigError(f"reading VideoMimic results (.h5) needs h5py, which is not installed: "
                          f"pip install {H5PY_PIN}") from e
    return h5py


def _result_folders(root: Path) -> list[Path]:
    """Folders holding any of the result files, at any depth below root (capture groups are optional)."""
    found = {p.parent for name in (MOTION_FILE, SCENE_FILE, G1_FILE) for p in root.rglob(name)}
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


def discover_videomimic(root: Path) -> list[SourceRef]:
    """One source per person of each result folder; a folder without the SMPL file is one ledger row."""
    h5py = _h5py()
    root = Path(root)
    refs = []
    for d in _result_folders(root):
        rel = d.relative_to(root)
        subset = str(rel.parent) if str(rel.parent) != "." else DATASET
        motion, scene = d / MOTION_FILE, d / SCENE_FILE
        if not motion.is_file():
            present = sorted(n for n in (SCENE_FILE, G1_FILE, KEYPOINTS_FILE) if (d / n).is_file())
            hint = f" ({G1_FILE} is their retargeted robot motion, not read)" if G1_FILE in present else ""
            refs.append(SourceRef.unusable(DATASET, d, root, Reason.MISSING_FILE.value,
                                           f"expected {MOTION_FILE} (the person's SMPL trajectory) in this result "
                                           f"folder; it holds only {', '.join(present)}{hint}"))
            continue
        files = (("motion", str(motion)), ("scene", str(scene)), ("fps_table", str(root / FPS_TABLE)))
        layout = "videomimic_real2sim" if _FOLDER.match(d.name) else "videomimic_real2sim_renamed"
        try:
            with h5py.File(motion, "r") as f:
                people = sorted(f[HUMANS].keys()) if isinstance(f.get(HUMANS), h5py.Group) else []
        except OSError:  # not an HDF5 file: the reader says so, as one ledger row
            people = []
        calibrated = _calibrated_people(d / KEYPOINTS_FILE, h5py)
        for p in people if len(people) > 1 else [None]:
            seq = d.name if p is None else f"{d.name}{PERSON_SEP}{p}"
            if p is not None and calibrated is not None and p not in calibrated:
                refs.append(SourceRef(DATASET, subset, seq, str(root), files, layout, (
                    Reason.NOT_A_SOURCE.value, f"person {p} is not gravity-calibrated: {KEYPOINTS_FILE} lists "
                    f"{sorted(calibrated)} (their stage 3 ran without --multihuman and left the others in the "
                    f"first camera's y-down frame); rerun stage 3 with --multihuman to ingest them")))
            else:
                refs.append(SourceRef(DATASET, subset, seq, str(root), files, layout))
    return refs


def _calibrated_people(path: Path, h5py) -> set[str] | None:
    """Person ids stage 3 rotated into the gravity-aligned world; None when the keypoints file is absent
    or unreadable (then every person is read, and the scene checks catch one in the wrong frame)."""
    try:
        with h5py.File(path, "r") as f:
            g = f.get("joints")
            return set(g.keys()) if isinstance(g, h5py.Group) else None
    except OSError:
        return None


def _person_of(ref: SourceRef) -> str | None:
    return ref.sequence.split(PERSON_SEP, 1)[1] if PERSON_SEP in ref.sequence else None


def video_fps(ref: SourceRef) -> tuple[float, str]:
    """(video frame rate [Hz], where it came from): the root's table, else their 30."""
    folder = Path(dict(ref.files)["motion"]).parent.name
    table = dict(ref.files).get("fps_table")
    if table and Path(table).is_file():
        try:
            with open(table, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("folder") == folder:
                        fps = float(row["video_fps"])
                        if not (np.isfinite(fps) and fps > 0):
                            raise ValueError(f"video_fps must be > 0, got {row['video_fps']!r}")
                        return fps, FPS_TABLE
        except (KeyError, ValueError, TypeError, csv.Error) as e:
            raise SourceError(Reason.BAD_CSV, table, f"expected columns folder,video_fps with video_fps > 0: {e}") from e
    return DEFAULT_VIDEO_FPS, f"assumed {DEFAULT_VIDEO_FPS:g} (their retargeting's 30 / subsample; no {FPS_TABLE} row)"


def read_megahunter(path: str, person: str | None) -> dict[str, np.ndarray]:
    """One person's SMPL arrays, checked: global_orient (T, 3, 3), body_pose (T, 23, 3, 3), root_transl
    (T, 3) [m], betas (T, 10), frame_number (T,) int (the image number of each row)."""
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError as e:
        raise SourceError(Reason.MISSING_FILE, path, "file not found") from e
    except OSError as e:
        raise SourceError(Reason.BAD_SHAPE, path, f"not a readable HDF5 file: {e}") from e
    with f:
        humans = f.get(HUMANS)
        if not isinstance(humans, h5py.Group) or not len(humans):
            raise SourceError(Reason.BAD_SHAPE, path, f"missing group {HUMANS}/<person id>; found {sorted(f.keys())}")
        pid = person if person is not None else sorted(humans.keys())[0]
        if pid not in humans:
            raise SourceError(Reason.BAD_SHAPE, path, f"no person {pid!r} in {HUMANS}; found {sorted(humans.keys())}")
        g = humans[pid]
        missing = [k for k in PARAM_SHAPES if k not in g]
        frames_key = f"{FRAMES}/{pid}"
        if frames_key not in f and f"/{frames_key}" not in f.attrs:
            missing.append(frames_key)
        if missing:
            raise SourceError(Reason.BAD_SHAPE, path, f"person {pid}: missing arrays {missing}; found "
                                                      f"{sorted(g.keys())} in {HUMANS}/{pid}")
        raw = {k: np.asarray(g[k][()]) for k in PARAM_SHAPES}
        names = np.asarray(f[frames_key][()] if frames_key in f else f.attrs[f"/{frames_key}"])
    out: dict[str, np.ndarray] = {"person_id": np.array(pid)}
    for k, shape in PARAM_SHAPES.items():
        a = raw[k]
        if k == "betas" and a.ndim == 1:  # their loader accepts one shape for all frames
            a = a[None]
        if k in ("global_orient", "root_transl") and a.ndim == len(shape):  # (T, 3, 3) / (T, 3) without the 1
            a = a[:, None]
        if a.ndim != 1 + len(shape) or tuple(a.shape[1:]) != shape:
            raise SourceError(Reason.BAD_SHAPE, path, f"{HUMANS}/{pid}/{k}: expected shape (T, "
                                                      f"{', '.join(map(str, shape))}), found {a.shape}")
        out[k] = check_array(a.reshape(len(a), -1), path, f"{pid}/{k}", (int(np.prod(shape)),)).reshape(a.shape)
    n = len(out["body_pose"])
    if len(out["betas"]) == 1:
        out["betas"] = np.repeat(out["betas"], n, axis=0)
    out["global_orient"], out["root_transl"] = out["global_orient"][:, 0], out["root_transl"][:, 0]
    check_same_length(path, **{k: out[k] for k in PARAM_SHAPES})
    for k in ("global_orient", "body_pose"):
        r = out[k].reshape(-1, 3, 3)
        err = np.abs(r @ np.swapaxes(r, -1, -2) - np.eye(3)).max(axis=(-1, -2))
        det = np.linalg.det(r)
        if np.any(err > 1e-3) or np.any(det < 0):
            i = int(np.argmax((err > 1e-3) | (det < 0))) // (len(r) // n)
            raise SourceError(Reason.BAD_BODY, path, f"{pid}/{k}: expected rotation matrices (orthonormal, det +1); "
                                                     f"frame {i} is not (|R R^T - I| = {err.max():.3g})")
    out["frame_number"] = _frame_numbers(names, n, path, pid)
    return out


def _frame_numbers(names: np.ndarray, n: int, path: str, pid: str) -> np.ndarray:
    flat = [x.decode() if isinstance(x, bytes) else str(x) for x in names.reshape(-1)]
    if len(flat) != n:
        raise SourceError(Reason.BAD_SHAPE, path, f"{FRAMES}/{pid}: {len(flat)} image names for {n} SMPL rows; "
                                                  "expected one per row")
    nums = []
    for s in flat:
        m = re.search(r"(\d+)$", s)
        if m is None:
            raise SourceError(Reason.BAD_SHAPE, path, f"{FRAMES}/{pid}: image name {s!r} does not end in its number "
                                                      "(expected e.g. '00001', the input image's stem)")
        nums.append(int(m[1]))
    return np.array(nums, dtype=np.int64)


def read_videomimic(ref: SourceRef, body: BodyModel, cfg: IngestConfig) -> HumanSequence:
    files = dict(ref.files)
    path, mesh_path = files["motion"], files["scene"]
    s = read_megahunter(path, _person_of(ref))
    vfps, vfps_from = video_fps(ref)
    times = (s["frame_number"] - s["frame_number"][0]) / vfps
    check_increasing(times, path, f"{FRAMES}/{s['person_id']}")
    steps = np.diff(s["frame_number"])
    step = int(np.median(steps)) if len(steps) else 1
    target_s, idx = uniform_index(times, cfg.fps)
    n = len(times)
    aa_root = matrix_to_axis_angle(s["global_orient"])
    aa_body = matrix_to_axis_angle(s["body_pose"]).reshape(n, 69)
    p = {"root_orient": interp_axis_angle(aa_root, idx), "pose_body": interp_axis_angle(aa_body, idx),
         "betas": interp_linear(s["betas"], idx)}
    pelvis_w = interp_linear(s["root_transl"], idx)
    try:
        t = len(idx)
        zero = np.zeros((t, 3))
        pelvis_rest = body.joints(zero, np.zeros((t, 69)), zero, p["betas"])[:, 0]
        p["trans"] = pelvis_w - pelvis_rest  # smplx's transl puts the pelvis joint at rest + transl
        joints = body.joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"])
    except Exception as e:  # the body model is a third-party boundary
        raise SourceError(Reason.BAD_BODY, path, f"{body.name} failed: {type(e).__name__}: {e}") from e

    if not Path(mesh_path).is_file():
        raise SourceError(Reason.MISSING_FILE, mesh_path, f"expected the scene {SCENE_FILE} next to {MOTION_FILE}: "
                                                          "without it the floor under the person is unknown")
    v, f = load_mesh_file(mesh_path)
    names = tuple(body.joint_names)
    feet = tuple([names.index(j) for j in side] for side in FEET)
    pelvis = names.index("pelvis")
    # in their frame (floor about a camera height below z = 0): checked there, then moved; units first,
    # on the raw vertices (a millimetre mesh would make a grid 10^6 times too large)
    check_scene_units(v.min(0), v.max(0), mesh_path, joints)
    scene = scene_from_mesh(v, f, "mesh", floor_z_m=float(v[:, 2].min()), source=Path(mesh_path).name,
                            around_xy_m=joints[:, pelvis, :2])
    check_scene(scene, mesh_path, joints, feet, pelvis, cfg.fps)
    floor = standing_floor_z(scene, joints, feet, cfg.fps)
    scene = shift_scene_z(scene, -floor)
    joints = joints - [0.0, 0.0, floor]
    p["trans"] = p["trans"] - [0.0, 0.0, floor]

    folder = Path(path).parent.name
    m = _FOLDER.match(folder)
    gaps = int(np.sum(steps > step)) if len(steps) else 0
    notes = {
        "source_layout": "videomimic_real2sim", "person_id": str(s["person_id"]),
        "video": m["video"] if m else None, "sfm": m["sfm"] if m else None,
        "source_frames": [int(s["frame_number"][0]), int(s["frame_number"][-1])],
        "subsample": int(m["k"]) if m else step, "video_fps": vfps, "video_fps_from": vfps_from,
        "frame_gaps": gaps,  # rows missing (the person not found there), bridged by interpolation
        "floor_shift_m": round(-floor, 4),
        "gender": f"VideoMimic fits the SMPL male body (gravity_calibration.py); joints here from {body.name}",
        "scene_frame": "their gravity-aligned z-up world, moved with the motion by floor_shift_m",
    }
    return HumanSequence(
        ref=ref, view="motion_only", fps=cfg.fps, t0_s=float(target_s[0]), joint_names=names,
        joint_pos_w=joints.astype(np.float32), params={k: np.asarray(x, np.float32) for k, x in p.items()},
        source_frame_index=idx, texts=[], video=None, body_model=body.name, body_source="videomimic_smpl",
        source_fps=vfps / max(step, 1), notes=notes, scene=scene)


def standing_floor_z(scene: Scene, joint_pos_w: np.ndarray, feet: tuple[list[int], list[int]], fps: float) -> float:
    """The lowest surface the person stands on [m]: a low percentile of the scene height under the
    still feet (all foot samples when none is still)."""
    under = []
    for idx in feet:
        f = joint_pos_w[:, idx]
        low = f[np.arange(len(f)), f[..., 2].argmin(1)]
        still = np.linalg.norm(np.gradient(low, axis=0), axis=-1) * fps < STILL_M_PER_S
        under.append(scene.height_at((low[still] if still.any() else low)[:, :2]))
    return float(np.percentile(np.concatenate(under), FLOOR_PERCENTILE))


def shift_scene_z(scene: Scene, dz: float) -> Scene:
    """The scene moved by dz along z with its floor at 0: surfaces below the new floor read as floor
    (the same grid a fresh rasterisation with floor 0 gives, without redoing it)."""
    heights = np.maximum(scene.heights_m.astype(np.float64) + dz, 0.0).astype(np.float32)
    verts = (scene.vertices_m.astype(np.float64) + [0.0, 0.0, dz]).astype(np.float32)
    moved = Scene(scene.representation, scene.kind, scene.origin_xy_m, scene.cell_m, heights, 0.0, verts,
                  scene.faces, scene.source)
    return Scene(**{**moved.__dict__, "kind": classify(moved)})
