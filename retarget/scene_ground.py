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
