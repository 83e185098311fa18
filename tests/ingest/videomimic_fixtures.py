"""VideoMimic real-to-sim result folders, as their stage 3 writes them (ingest/scene_videomimic.py).

Written from `real2sim/stage3_postprocessing/gravity_calibration.py` (gravity_calibrated_megahunter.h5:
`our_pred_humans_smplx_params/<person id>/{global_orient (T,1,3,3), body_pose (T,23,3,3), betas (T,10),
root_transl (T,1,3)}` as float32, `person_frame_info_list/<person id>` (T,1) variable-length strings, and
the per-frame point maps under `our_pred_world_cameras_and_structure/<image name>/`), from
`mesh_generation.py` (background_mesh.obj, exported by trimesh) and from `process_video.sh` (the folder
name `megahunter_megasam_reconstruction_results_<video>_cam01_frame_<a>_<b>_subsample_<k>`). Not from our
sample generator.

The quirks the real files have and the reader must survive: the world's origin is the first camera, so
the floor is about a camera height below z = 0 and the stairs are turned about z; `root_transl` is the
pelvis joint, not smplx's transl; rows are only the frames the person was found in (a second person
enters late and is lost for a few frames); image names are strings stored as bytes, shape (T, 1).

The person is a kinematic walk up the stairs through the built-in SMPL skeleton (ingest/body_model.py):
ankle targets on each tread, two-link leg IK in the sagittal plane, feet kept level. Synthetic, never
a measurement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest.body_model import BuiltinSkeleton
from ingest.scene import box_mesh
from ingest.skeletons import SMPL_JOINTS

STAIR_X0_M, STAIR_RUN_M, STAIR_RISE_M, N_STAIRS = 1.0, 0.30, 0.15, 4
LANDING_END_M = 3.4
CAMERA_HEIGHT_M = 1.3  # their world's origin is the first camera: the floor is this far below z = 0
YAW_RAD = 0.7  # the first camera's heading: the stairs are turned about z in their world
OFFSET_XY_M = (0.4, -0.8)
PELVIS_ABOVE_ANKLES_M = 0.72  # hip 0.09 below the pelvis, legs of 0.38 + 0.40 slightly bent
ANKLE_ABOVE_SOLE_M = 0.08  # the built-in foot joint is 0.06 below the ankle: it ends 2 cm above the tread
Y_DOWN_FROM_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # undoes their final turn to z-up
R_BODY_TO_WORLD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # SMPL y-up, z-forward -> facing +x, z-up
J = {n: i for i, n in enumerate(SMPL_JOINTS)}


def stair_height(x: np.ndarray) -> np.ndarray:
    k = np.floor((np.asarray(x, dtype=float) - STAIR_X0_M) / STAIR_RUN_M) + 1
    return np.clip(k, 0, N_STAIRS) * STAIR_RISE_M


def stair_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Ground (a 8 m x 6 m quad at z = 0) and four treads up to a landing, z-up metres, floor at 0."""
    vs = [np.array([[-2.0, -3.0, 0.0], [6.0, -3.0, 0.0], [6.0, 3.0, 0.0], [-2.0, 3.0, 0.0]])]
    fs = [np.array([[0, 1, 2], [0, 2, 3]])]
    n = 4
    for k in range(N_STAIRS):
        x0, top = STAIR_X0_M + k * STAIR_RUN_M, STAIR_RISE_M * (k + 1)
        v, f = box_mesh(np.array([(x0 + LANDING_END_M) / 2, 0.0, top / 2]),
                        np.array([(LANDING_END_M - x0) / 2, 0.6, top / 2]))
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return np.concatenate(vs), np.concatenate(fs)


def _rot_x(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    out = np.zeros(np.shape(theta) + (3, 3))
    out[..., 0, 0] = 1.0
    out[..., 1, 1], out[..., 1, 2], out[..., 2, 1], out[..., 2, 2] = c, -s, s, c
    return out


def _leg_ik(v: complex) -> tuple[float, float]:
    """Hip and knee angles about the body's x axis putting the ankle at v = y + i z from the hip
    (body frame), for the built-in thigh (0.04, -0.38, 0) and shin (-0.01, -0.40, -0.04)."""
    thigh, shin = complex(-0.38, 0.0), complex(-0.40, -0.04)
    reach = lambda b: abs(thigh + np.exp(1j * b) * shin)  # noqa: E731 - decreasing in b on [0, 2.5]
    d = float(np.clip(abs(v), reach(2.5), reach(0.0)))
    lo, hi = 0.0, 2.5
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if reach(mid) > d else (lo, mid)
    b = (lo + hi) / 2
    a = float(np.angle(v) - np.angle(thigh + np.exp(1j * b) * shin))
    return a, b


def stair_walk(fps: float = 30.0, t_stand_s: float = 0.7, t_step_s: float = 0.6) -> dict[str, np.ndarray]:
    """SMPL parameters of a walk up the stairs, floor at 0, facing +x: global_orient (T, 3, 3), body_pose
    (T, 23, 3, 3), betas (T, 10), root_transl (T, 3) (the pelvis joint)."""
    steps = [(0, 0.55), (1, 1.15), (0, 1.45), (1, 1.75), (0, 2.05), (1, 2.45), (0, 2.45)]
    n = int(round((2 * t_stand_s + t_step_s * len(steps)) * fps))
    t = np.arange(n) / fps
    ankle = np.zeros((n, 2, 3))
    ankle[:, 0, 1], ankle[:, 1, 1] = 0.09, -0.09  # under the hips: hip 0.06 + knee 0.04 - ankle 0.01
    ankle[:, :, 2] = ANKLE_ABOVE_SOLE_M
    support = ankle[:, :, 2].copy()  # ankle heights without the swing's lift: the pelvis follows these
    cur = [0.0, 0.0]
    ease = lambda u: u * u * (3 - 2 * u)  # noqa: E731
    for k, (side, x1) in enumerate(steps):
        a, b = t_stand_s + k * t_step_s, t_stand_s + (k + 1) * t_step_s
        x0 = cur[side]
        z0, z1 = stair_height(x0) + ANKLE_ABOVE_SOLE_M, stair_height(x1) + ANKLE_ABOVE_SOLE_M
        during, after = (t >= a) & (t < b), t >= b
        u = (t[during] - a) / t_step_s
        ankle[during, side, 0] = x0 + (x1 - x0) * ease(np.clip((u - 0.1) / 0.8, 0, 1))
        ankle[during, side, 2] = z0 + (z1 - z0) * ease(np.clip(u / 0.5, 0, 1)) + (0.06 + max(z1 - z0, 0)) * np.sin(np.pi * u)
        ankle[after, side, 0], ankle[after, side, 2] = x1, z1
        support[during, side] = z0 + (z1 - z0) * ease(np.clip(u / 0.5, 0, 1))
        support[after, side] = z1
        cur[side] = x1
    pelvis = np.stack([ankle[:, :, 0].mean(1), np.zeros(n), support.mean(1) + PELVIS_ABOVE_ANKLES_M], -1)
    pose = np.broadcast_to(np.eye(3), (n, 23, 3, 3)).copy()
    for side, (hip, knee, ank) in enumerate((("left_hip", "left_knee", "left_ankle"),
                                              ("right_hip", "right_knee", "right_ankle"))):
        hip_w = pelvis + R_BODY_TO_WORLD @ np.array([0.06 if side == 0 else -0.06, -0.09, 0.0])
        d = (ankle[:, side] - hip_w) @ R_BODY_TO_WORLD  # world -> body frame (R^T applied row-wise)
        angles = np.array([_leg_ik(complex(y, z)) for y, z in d[:, 1:]])
        pose[:, J[hip] - 1] = _rot_x(angles[:, 0])
        pose[:, J[knee] - 1] = _rot_x(angles[:, 1])
        pose[:, J[ank] - 1] = _rot_x(-angles.sum(1))  # the foot stays level
    return {"global_orient": np.broadcast_to(R_BODY_TO_WORLD, (n, 3, 3)).copy(), "body_pose": pose,
            "betas": np.zeros((n, 10)), "root_transl": pelvis}


def _yaw() -> np.ndarray:
    c, s = np.cos(YAW_RAD), np.sin(YAW_RAD)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def to_their_world(points: np.ndarray) -> np.ndarray:
    """Floor-at-0 coordinates -> their gravity-aligned world (origin at the first camera, turned about z)."""
    return points @ _yaw().T + [OFFSET_XY_M[0], OFFSET_XY_M[1], -CAMERA_HEIGHT_M]


def _their_params(walk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    r = _yaw()
    return {"global_orient": (r @ walk["global_orient"])[:, None], "body_pose": walk["body_pose"],
            "betas": walk["betas"], "root_transl": to_their_world(walk["root_transl"])[:, None]}


def folder_name(video: str, first: int, last: int, subsample: int) -> str:
    return f"megahunter_megasam_reconstruction_results_{video}_cam01_frame_{first}_{last}_subsample_{subsample}"


def write_result(root: Path, group: str, video: str, *, subsample: int = 1, fps: float = 30.0,
                 people: tuple[str, ...] = ("1",), mesh_units: str = "m", mesh_up: str = "z",
                 drop: str | None = None, body_pose_as: str = "matrix",
                 calibrated: tuple[str, ...] | None = None) -> Path:
    """One result folder under root/group (group "" = directly under root). people[1:], when given, are
    the same walk 0.3 m to the left, found from row 10 on with rows 20-24 missing. drop: a key left out
    of person 1; body_pose_as "axis_angle": (T, 69), not their (T, 23, 3, 3). calibrated: the people stage 3
    rotated (None: all, as with --multihuman); the others stay in the first camera's y-down frame and
    gravity_calibrated_keypoints.h5 does not list them."""
    import h5py
    import trimesh

    walk = _their_params(stair_walk(fps / subsample))
    n = len(walk["body_pose"])
    names = [f"{1 + i * subsample:05d}" for i in range(n)]
    d = Path(root) / group / folder_name(video, 0, n * subsample, subsample)
    d.mkdir(parents=True, exist_ok=True)
    with h5py.File(d / "gravity_calibrated_megahunter.h5", "w") as f:
        for pi, pid in enumerate(people):
            rows = np.arange(n) if pi == 0 else np.setdiff1d(np.arange(10, n), np.arange(20, 25))
            shift = _yaw() @ np.array([0.0, 0.3 * min(pi, 1), 0.0])  # person 2: 0.3 m to the walk's left
            g = f.create_group(f"our_pred_humans_smplx_params/{pid}")
            for k, a in walk.items():
                a = a[rows] + (shift if k == "root_transl" else 0.0)
                if calibrated is not None and pid not in calibrated and k in ("root_transl", "global_orient"):
                    a = Y_DOWN_FROM_Z_UP @ a if k == "global_orient" else a @ Y_DOWN_FROM_Z_UP.T
                if k == drop and pi == 0:
                    continue
                if k == "body_pose" and body_pose_as == "axis_angle" and pi == 0:
                    from robomirror.rotations import matrix_to_axis_angle
                    a = matrix_to_axis_angle(a).reshape(len(a), 69)
                g.create_dataset(k, data=np.asarray(a, dtype=np.float32))
            f.create_dataset(f"person_frame_info_list/{pid}", data=np.array([[names[i]] for i in rows], dtype=object),
                             dtype=h5py.string_dtype())
        for i in (0, n - 1):  # the point maps (all frames in the real files; not read)
            w = f.create_group(f"our_pred_world_cameras_and_structure/{names[i]}")
            cam = np.eye(4, dtype=np.float32)
            cam[:3, 3] = to_their_world(np.array([[-1.5, 0.0, CAMERA_HEIGHT_M]]))[0]
            w.create_dataset("cam2world", data=cam)
            w.create_dataset("pts3d", data=np.zeros((8, 6, 3), np.float32))
            w.create_dataset("depths", data=np.ones((8, 6), np.float32))
            w.create_dataset("conf", data=np.ones((8, 6), np.float32))
            w.create_dataset("rgbimg", data=np.zeros((8, 6, 3), np.float32))
            w.create_dataset("dynamic_msk", data=np.zeros((8, 6), np.float32))
    with h5py.File(d / "gravity_calibrated_keypoints.h5", "w") as f:  # joints (T, 45, 3) per calibrated person
        for pid in people:
            if calibrated is None or pid in calibrated:
                f.create_dataset(f"joints/{pid}", data=np.zeros((n, 45, 3), np.float32))
                f.create_dataset(f"root_orient/{pid}", data=walk["global_orient"].astype(np.float32))
        f.create_dataset("world_rotation", data=np.eye(3, dtype=np.float32))
        f.attrs["/joint_names"] = [f"joint_{i}" for i in range(45)]
    v, faces = stair_mesh()
    v = to_their_world(v)
    if mesh_up == "y":  # a y-up export of the same mesh: (x, z, -y)
        v = np.stack([v[:, 0], v[:, 2], -v[:, 1]], -1)
    v = v * (1000.0 if mesh_units == "mm" else 1.0)
    trimesh.Trimesh(v, faces, process=False).export(d / "background_mesh.obj")
    return d


def write_g1_only(root: Path, group: str, video: str) -> Path:
    """A folder with the mesh and only their retargeted robot motion (what their simulation reads)."""
    import h5py
    import trimesh

    d = Path(root) / group / folder_name(video, 0, 100, 1)
    d.mkdir(parents=True, exist_ok=True)
    with h5py.File(d / "retarget_poses_g1.h5", "w") as f:
        f.create_dataset("joints", data=np.zeros((10, 23), np.float32))
        f.create_dataset("root_pos", data=np.zeros((10, 3), np.float32))
        f.attrs["/fps"] = 30.0
    v, faces = stair_mesh()
    trimesh.Trimesh(to_their_world(v), faces, process=False).export(d / "background_mesh.obj")
    return d


def builtin_feet_z(params: dict[str, np.ndarray]) -> np.ndarray:
    """Lowest foot joint per frame of the built-in skeleton for floor-at-0 params (a fixture self-check)."""
    from robomirror.rotations import matrix_to_axis_angle

    body = BuiltinSkeleton("smpl")
    n = len(params["body_pose"])
    aa_root = matrix_to_axis_angle(params["global_orient"])
    aa = matrix_to_axis_angle(params["body_pose"]).reshape(n, 69)
    j = body.joints(aa_root, aa, params["root_transl"], params["betas"])
    return j[:, [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]], 2].min(1)
