"""Grounding, penetration and the CoM/CoP support against a clip's scene instead of z = 0 (issue 22).

The scene (ingest/scene.py) is in the human's metres; retargeting scales the pelvis path by the shape
fit's `root_scale`, so the robot's scene is the human's scaled by the same factor about the origin
(holosoma scales its climbing boxes by its robot/human height ratio the same way). Every height below
is then relative to the surface under the point: a foot on a stair tread is at height 0, not at the
tread's height, so stepping onto a stair is not penetration and a foot on it is supported. A seated
pelvis (low over its feet, within `SEAT_M` of the surface under it) adds seat points to the support
polygon, so sitting on a bench is supported.
"""

from __future__ import annotations

import numpy as np

from ingest.scene import Scene
from retarget.contacts import CONTACT_HEIGHT_M, CONTACT_SPEED_M_S, SOLE_MAX_M
from retarget.robot import G1
from retarget.stability import StabilityConfig, StabilityVerdict, foot_points, pressure_weights, verdict

SEAT_M = 0.15  # pelvis body origin at most this far above the surface under it: it sits on it
SEAT_HALF_M = 0.08  # the seat's contact patch around the pelvis [m]


def robot_scene(scene: Scene, root_scale: float) -> Scene:
    return scene.scaled(root_scale)


def surface_under(scene: Scene, points_w: np.ndarray) -> np.ndarray:
    """Scene height under points (..., 3) -> (...)."""
    return scene.height_at(points_w[..., :2])


def foot_clearance(robot: G1, qpos: np.ndarray, scene: Scene) -> np.ndarray:
    """(T, 2) lowest point of each foot above the surface under it [m] (negative: inside the scene)."""
    pts = foot_points(robot, qpos)  # (T, P, 3), left geoms first
    h = pts[..., 2] - surface_under(scene, pts)
    half = pts.shape[1] // 2
    return np.stack([h[:, :half].min(1), h[:, half:].min(1)], 1)


def seated(robot: G1, qpos: np.ndarray, scene: Scene) -> np.ndarray:
    """(T,) bool: the pelvis rests on the surface under it."""
    pelvis = qpos[:, :3]
    return (pelvis[:, 2] - surface_under(scene, pelvis)) < SEAT_M


def com_cop_distance(robot: G1, qpos: np.ndarray, scene: Scene, cfg: StabilityConfig) -> np.ndarray:
    """As retarget.stability.com_cop_distance with each point's height taken above the scene. On seated
    frames the seat carries the body: the distance is from the CoM to the support polygon of the seat
    patch and the feet in contact (0 inside it), the static criterion the CoP estimate stands for."""
    from scipy.spatial import ConvexHull, QhullError

    com = robot.com(qpos)
    pts = foot_points(robot, qpos)
    h = pts[..., 2] - surface_under(scene, pts)
    w = pressure_weights(h, cfg)
    dd = np.linalg.norm(com[:, :2] - (w[..., None] * pts[..., :2]).sum(1) / w.sum(1)[:, None], axis=-1)
    ring = np.array([[0, 0], [SEAT_HALF_M, 0], [-SEAT_HALF_M, 0], [0, SEAT_HALF_M], [0, -SEAT_HALF_M]])
    for t in np.flatnonzero(seated(robot, qpos, scene)):
        support = np.concatenate([qpos[t, :2] + ring, pts[t, h[t] < 0.02, :2]])
        try:
            eq = ConvexHull(support).equations  # rows (a, b, c): a x + b y + c <= 0 inside
        except QhullError:
            continue
        dd[t] = max(float((eq[:, :2] @ com[t, :2] + eq[:, 2]).max()), 0.0)
    return dd


def assess(robot: G1, qpos: np.ndarray, scene: Scene, cfg: StabilityConfig = StabilityConfig()) -> StabilityVerdict:
    return verdict(com_cop_distance(robot, qpos, scene, cfg), cfg)


def keypoint_heights(targets: dict[str, np.ndarray], scene: Scene) -> np.ndarray:
    """(T, 2) lowest of each foot's ankle and toe keypoints above the surface under that keypoint [m]
    (negative: inside the scene)."""
    return np.stack([np.minimum.reduce([targets[f"{s}_{p}"][:, 2] - scene.height_at(targets[f"{s}_{p}"][:, :2])
                                        for p in ("ankle", "toe")]) for s in ("left", "right")], 1)


def keypoint_rest_height(rel: np.ndarray, foot_xy: np.ndarray, fps: float) -> float:
    """How high [m] a planted foot's lowest keypoint sits above the surface: the median over slow feet
    between the surface and SOLE_MAX_M above it (0 when there are none).

    On a flat floor the clip's 5th percentile stands for this (retarget.contacts.contact_labels), but on
    a scene it is wrong: a foot that the data puts inside a stair (holosoma's real scenes disagree with
    their own feet in 3-55 % of still frames, and the sample staircase does too) drags the percentile
    below the surface, and then no foot standing on a tread counts as a contact any more."""
    speed = np.linalg.norm(np.gradient(foot_xy, axis=0), axis=-1) * fps
    near = (rel >= 0) & (rel < SOLE_MAX_M) & (speed < CONTACT_SPEED_M_S)
    return float(np.median(rel[near])) if near.any() else 0.0


def scene_contact_labels(rel: np.ndarray, foot_xy: np.ndarray, fps: float) -> np.ndarray:
    """(T, 2) bool: a foot is in contact when its lowest keypoint is within CONTACT_HEIGHT_M of its rest
    height above the surface under it (or inside the scene) and it moves slower than CONTACT_SPEED_M_S.
    rel: (T, 2) `keypoint_heights`; foot_xy: (T, 2, 2) ankle positions [m]."""
    speed = np.linalg.norm(np.gradient(foot_xy, axis=0), axis=-1) * fps
    return (rel - keypoint_rest_height(rel, foot_xy, fps) < CONTACT_HEIGHT_M) & (speed < CONTACT_SPEED_M_S)


def lift_feet_out_of_scene(targets: dict[str, np.ndarray], scene: Scene, rest_m: float) -> dict[str, np.ndarray]:
    """Foot targets (ankle and toe) raised so that no foot's lowest keypoint is below its rest height
    above the surface under it. The scene is the hard constraint: a target left inside a stair would be
    tracked by the IK, and grounding would then lift the whole robot off the other foot's support."""
    out = dict(targets)
    rel = keypoint_heights(targets, scene)
    for k, side in enumerate(("left", "right")):
        lift = np.maximum(rest_m - rel[:, k], 0.0)
        for part in ("ankle", "toe"):
            p = out[f"{side}_{part}"].copy()
            p[:, 2] += lift
            out[f"{side}_{part}"] = p
    return out


def float_cm(clear: np.ndarray, contact: np.ndarray) -> float:
    """Mean height [cm] of the robot's soles above the surface under them over the feet labelled in
    contact (a sole inside the scene counts 0: that is penetration's to count); 0 without contacts.
    clear: (T, 2) `foot_clearance` of the final motion; contact: (T, 2) the contact labels."""
    h = clear[contact]
    return float(np.clip(h, 0.0, None).mean() * 100.0) if len(h) else 0.0


def ground_offsets_scene(clear: np.ndarray, contact: np.ndarray, smooth_frames: int = 5) -> np.ndarray:
    """Vertical root shift (T,) so that feet in contact touch the surface under them and no foot goes
    inside the scene; clear: (T, 2) foot clearance above the scene before the shift."""
    from scipy.ndimage import uniform_filter1d

    t = len(clear)
    want = np.full(t, np.nan)
    gap = np.where(contact, clear, np.inf).min(axis=1)
    any_c = contact.any(axis=1)
    want[any_c] = -gap[any_c]
    if np.isnan(want).all():
        want[:] = -clear.min()
    idx = np.arange(t)
    known = ~np.isnan(want)
    off = uniform_filter1d(np.interp(idx, idx[known], want[known]), size=smooth_frames, mode="nearest")
    return np.maximum(off, -clear.min(axis=1))


# ------------------------------------------------------------------------------- local height map
HEIGHT_MAP_N = 11  # grid points per side
HEIGHT_MAP_CELL_M = 0.1  # grid spacing [m]: 11 x 11 at 0.1 m covers 1 m x 1 m centred on the root


def height_map_offsets(n: int = HEIGHT_MAP_N, cell_m: float = HEIGHT_MAP_CELL_M) -> np.ndarray:
    """(n, n, 2) grid points in the root's heading frame [m]: [i, j] = (x_i, y_j), x forward, y left,
    x_i = (i - n // 2) * cell_m (row 0 behind the root, the last row in front), y_j likewise (column 0
    on the right, the last column on the left)."""
    k = (np.arange(n) - n // 2) * cell_m
    return np.stack(np.meshgrid(k, k, indexing="ij"), -1)


def heading_yaw(root_quat_wxyz: np.ndarray) -> np.ndarray:
    """(...) yaw [rad] of the root's x axis projected on the ground plane."""
    w, x, y, z = np.moveaxis(np.asarray(root_quat_wxyz, dtype=np.float64), -1, 0)
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def local_height_map(scene: Scene | None, root_pos_w: np.ndarray, root_quat_wxyz: np.ndarray,
                     n: int = HEIGHT_MAP_N, cell_m: float = HEIGHT_MAP_CELL_M) -> np.ndarray:
    """The terrain around the root per frame, VideoMimic's policy observation (arXiv 2505.03729: the
    policy sees a local height map of the reconstructed environment around the root, in the root's
    heading frame): `(T, n, n)` float32, [t, i, j] = surface height under grid point (i, j) of
    `height_map_offsets` (rotated by the root's yaw only, so the grid stays level) minus the root's
    height [m]; a point in front on a step higher than the pelvis reads above 0.

    Assumption, not read from VideoMimic's code: 11 x 11 points at 0.1 m (1 m x 1 m) and heights relative
    to the root (pelvis body origin) are our choice for this grid; VideoMimic's exact extent, spacing
    and reference height may differ. scene None: the flat floor at z = 0 (every entry -root height).
    root_pos_w: (T, 3) [m]; root_quat_wxyz: (T, 4); the scene must be in the same frame and scale
    (the robot's: `robot_scene`)."""
    root_pos_w = np.asarray(root_pos_w, dtype=np.float64)
    yaw = heading_yaw(root_quat_wxyz)
    c, s = np.cos(yaw)[:, None, None], np.sin(yaw)[:, None, None]
    off = height_map_offsets(n, cell_m)
    xy = root_pos_w[:, None, None, :2] + np.stack([c * off[..., 0] - s * off[..., 1],
                                                   s * off[..., 0] + c * off[..., 1]], -1)
    ground = np.zeros(xy.shape[:-1]) if scene is None else scene.height_at(xy)
    return (ground - root_pos_w[:, 2, None, None]).astype(np.float32)
