"""The scene a sequence was performed on: geometry, its checks at the reader boundary, its store.

A scene comes as a mesh (OBJ/PLY/GLB, read with trimesh), a set of boxes, or a height field. Every
stage downstream asks one question of it, "how high is the surface under this point?", so each is
reduced once, here, to a top-surface height grid (`heights_m`) in the motion's frame (z-up, metres):
the highest scene surface above each cell centre, the floor (z = `floor_z_m`) where there is none.
That grid is what retargeting grounds feet on, what the env loads as an hfield and what the local
height map observation samples (VideoMimic, arXiv 2505.03729, also trains on a height map of its
reconstructed meshes).

Checks, the way motion is checked (`ingest/checks.py`, `ingest/up_axis.py`): the scene must be in
metres and z-up like the motion it carries. Units: a scene whose extent is far larger than the
motion's (centimetres or millimetres) is refused with `Reason.SCENE_UNITS`. Up axis: where the person
stands, the feet must rest on the scene's surface, not inside it; a scene whose surface the feet
sink into, and that a y-up -> z-up turn would fix, is refused with `Reason.SCENE_UP_AXIS`.

Storage: one canonical npz per scene, named by the digest of its bytes (`scene_id`) below
`<data root>/scenes/`, written once per sequence and referenced by every clip cut from it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.failures import Reason
from robomirror.atomic import npz_bytes, publish_bytes, sha256_bytes
from robomirror.errors import SourceError

SCENE_FORMAT_VERSION = 1
CELL_M = 0.05  # height grid resolution [m]
MARGIN_M = 1.0  # the grid extends this far beyond the scene and the motion [m]
REPRESENTATIONS = ("mesh", "boxes", "heightfield")
KINDS = ("stairs", "bench", "slope", "boxes", "terrain")  # what the scene is, as `scene_kind` in SQL
MAX_EXTENT_RATIO = 20.0  # a scene this many times wider than the motion's extent + 10 m is not in metres ...
MAX_HEIGHT_RATIO = 8.0  # ... nor one this many times taller than the person
SINK_M = 0.10  # a still foot this far inside the surface ...
FLOAT_M = 0.25  # ... or this far above it is not supported by the scene
MISMATCH_FRACTION = 0.25  # share of unsupported events past which the up axis is diagnosed


@dataclass(frozen=True)
class Scene:
    """A scene reduced to its top surface, z-up, metres, in the motion's world frame.

    heights_m: (H, W) float32 surface height of cell (i, j) centred at origin_xy_m + (j, i) * cell_m.
    vertices_m/faces: the triangle mesh (boxes and height fields are meshed too), for drawing.
    """

    representation: str  # "mesh" | "boxes" | "heightfield": what the source gave
    kind: str  # one of KINDS (classified from the geometry unless the source says)
    origin_xy_m: tuple[float, float]
    cell_m: float
    heights_m: np.ndarray
    floor_z_m: float
    vertices_m: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int32
    source: str = ""  # file the scene came from (provenance only; not part of the id)

    @property
    def bounds_m(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        lo, hi = self.vertices_m.min(0), self.vertices_m.max(0)
        return tuple(float(x) for x in lo), tuple(float(x) for x in hi)  # type: ignore[return-value]

    def to_npz(self) -> bytes:
        return npz_bytes({
            "format_version": np.int32(SCENE_FORMAT_VERSION), "representation": np.array(self.representation),
            "kind": np.array(self.kind), "origin_xy_m": np.asarray(self.origin_xy_m, np.float64),
            "cell_m": np.float64(self.cell_m), "heights_m": self.heights_m.astype(np.float32),
            "floor_z_m": np.float64(self.floor_z_m), "vertices_m": self.vertices_m.astype(np.float32),
            "faces": self.faces.astype(np.int32)})

    @property
    def scene_id(self) -> str:
        return sha256_bytes(self.to_npz())[:20]

    @classmethod
    def from_npz(cls, data: bytes, source: str = "") -> "Scene":
        z = np.load(io.BytesIO(data), allow_pickle=False)
        if int(z["format_version"]) > SCENE_FORMAT_VERSION:
            raise ValueError(f"scene format {int(z['format_version'])} is newer than this code reads "
                             f"({SCENE_FORMAT_VERSION}); update RoboMirror")
        return cls(str(z["representation"]), str(z["kind"]), tuple(float(x) for x in z["origin_xy_m"]),
                   float(z["cell_m"]), z["heights_m"], float(z["floor_z_m"]), z["vertices_m"], z["faces"], source)

    def ref(self) -> dict:
        """What a clip's meta says about its scene (JSON)."""
        lo, hi = self.bounds_m
        return {"scene_id": self.scene_id, "representation": self.representation, "kind": self.kind,
                "bounds_m": [list(lo), list(hi)], "units": "m", "up_axis": "z", "frame": "motion world",
                "cell_m": self.cell_m, "source": self.source}

    def scaled(self, s: float) -> "Scene":
        """The scene scaled about the world origin (as retargeting scales the pelvis path: holosoma
        scales its climbing boxes by the same factor as the motion)."""
        return Scene(self.representation, self.kind, (self.origin_xy_m[0] * s, self.origin_xy_m[1] * s),
                     self.cell_m * s, (self.heights_m * s).astype(np.float32), self.floor_z_m * s,
                     (self.vertices_m * s).astype(np.float32), self.faces, self.source)

    def height_at(self, xy: np.ndarray) -> np.ndarray:
        """Surface height [m] under points xy (..., 2), bilinear in the grid; the floor outside it."""
        xy = np.asarray(xy, dtype=np.float64)
        h = self.heights_m.astype(np.float64)
        u = (xy[..., 0] - self.origin_xy_m[0]) / self.cell_m
        v = (xy[..., 1] - self.origin_xy_m[1]) / self.cell_m
        inside = (u >= 0) & (v >= 0) & (u <= h.shape[1] - 1) & (v <= h.shape[0] - 1)
        u = np.clip(u, 0, h.shape[1] - 1)
        v = np.clip(v, 0, h.shape[0] - 1)
        j0, i0 = np.minimum(u.astype(int), h.shape[1] - 2).clip(0), np.minimum(v.astype(int), h.shape[0] - 2).clip(0)
        fu, fv = u - j0, v - i0
        j1, i1 = np.minimum(j0 + 1, h.shape[1] - 1), np.minimum(i0 + 1, h.shape[0] - 1)
        out = ((1 - fv) * ((1 - fu) * h[i0, j0] + fu * h[i0, j1]) + fv * ((1 - fu) * h[i1, j0] + fu * h[i1, j1]))
        return np.where(inside, out, self.floor_z_m)


# ------------------------------------------------------------------------------------------- building
def _raster_top(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, shape: tuple[int, int],
                cell: float, floor_z: float, chunk_cells: int = 1 << 22) -> np.ndarray:
    """Highest triangle above each cell centre (the floor where none): (H, W).

    Vectorised over triangles: each triangle's bounding box of cells is enumerated (np.repeat), the
    barycentric test runs on all candidates at once, and np.maximum.at keeps the top. Triangles are
    taken in chunks of at most `chunk_cells` candidate cells, so a large face costs memory, not a loop."""
    h = np.full(shape, floor_z, dtype=np.float64)
    tri = vertices[np.asarray(faces, dtype=np.int64)]  # (F, 3, 3)
    x0, y0, x1, y1, x2, y2 = (tri[:, k, d] for k in range(3) for d in range(2))
    det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
    j_lo = np.maximum(np.floor((tri[:, :, 0].min(1) - origin[0]) / cell), 0).astype(np.int64)
    j_hi = np.minimum(np.ceil((tri[:, :, 0].max(1) - origin[0]) / cell), shape[1] - 1).astype(np.int64)
    i_lo = np.maximum(np.floor((tri[:, :, 1].min(1) - origin[1]) / cell), 0).astype(np.int64)
    i_hi = np.minimum(np.ceil((tri[:, :, 1].max(1) - origin[1]) / cell), shape[0] - 1).astype(np.int64)
    # a vertical face (det ~ 0) covers nothing seen from above; an empty box covers nothing either
    keep = np.flatnonzero((np.abs(det) >= 1e-12) & (j_lo <= j_hi) & (i_lo <= i_hi))
    nj, ni = j_hi - j_lo + 1, i_hi - i_lo + 1
    counts = (nj * ni)[keep]
    ends = np.cumsum(counts)
    start = 0
    while start < len(keep):
        stop = max(int(np.searchsorted(ends, (ends[start - 1] if start else 0) + chunk_cells, "right")), start + 1)
        t, n = keep[start:stop], counts[start:stop]
        f = np.repeat(t, n)  # triangle of each candidate cell
        k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)  # index within its box
        jj, ii = j_lo[f] + k % nj[f], i_lo[f] + k // nj[f]
        px, py = origin[0] + jj * cell, origin[1] + ii * cell
        a = ((y1[f] - y2[f]) * (px - x2[f]) + (x2[f] - x1[f]) * (py - y2[f])) / det[f]
        b = ((y2[f] - y0[f]) * (px - x2[f]) + (x0[f] - x2[f]) * (py - y2[f])) / det[f]
        c = 1 - a - b
        inside = (a >= -1e-9) & (b >= -1e-9) & (c >= -1e-9)
        z = a * tri[f, 0, 2] + b * tri[f, 1, 2] + c * tri[f, 2, 2]
        np.maximum.at(h, (ii[inside], jj[inside]), z[inside])
        start = stop
    return h


def scene_from_mesh(vertices_m: np.ndarray, faces: np.ndarray, representation: str = "mesh",
                    kind: str | None = None, floor_z_m: float = 0.0, source: str = "",
                    around_xy_m: np.ndarray | None = None) -> Scene:
    """Reduce a triangle mesh (z-up, metres) to a Scene. around_xy_m: (N, 2) points (the motion's path)
    the grid must also cover."""
    v = np.asarray(vertices_m, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    pts = v[:, :2] if around_xy_m is None else np.concatenate([v[:, :2], np.asarray(around_xy_m)[:, :2]])
    origin = np.floor((pts.min(0) - MARGIN_M) / CELL_M) * CELL_M
    top = np.ceil((pts.max(0) + MARGIN_M) / CELL_M) * CELL_M
    shape = (int(round((top[1] - origin[1]) / CELL_M)) + 1, int(round((top[0] - origin[0]) / CELL_M)) + 1)
    heights = _raster_top(v, f, origin, shape, CELL_M, floor_z_m)
    scene = Scene(representation, kind or "terrain", (float(origin[0]), float(origin[1])), CELL_M,
                  heights.astype(np.float32), float(floor_z_m), v.astype(np.float32), f.astype(np.int32), source)
    if kind is None:
        scene = Scene(**{**scene.__dict__, "kind": classify(scene)})
    return scene


def box_mesh(center_m: np.ndarray, half_m: np.ndarray, yaw_rad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One box's 8 corners and 12 triangles."""
    s = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64) * half_m
    c, sn = np.cos(yaw_rad), np.sin(yaw_rad)
    s = s @ np.array([[c, sn, 0], [-sn, c, 0], [0, 0, 1]])
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return s + center_m, faces


def scene_from_boxes(boxes: np.ndarray, **kw) -> Scene:
    """boxes: (N, 7) centre xyz [m], half sizes xyz [m], yaw [rad]."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    vs, fs, n = [], [], 0
    for b in boxes:
        v, f = box_mesh(b[:3], b[3:6], float(b[6]))
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return scene_from_mesh(np.concatenate(vs), np.concatenate(fs), "boxes", **kw)


def scene_from_heightfield(heights_m: np.ndarray, origin_xy_m: tuple[float, float], cell_m: float,
                           kind: str | None = None, source: str = "") -> Scene:
    """A height field (H, W) [m], cell (i, j) at origin + (j, i) * cell, meshed for drawing."""
    h = np.asarray(heights_m, dtype=np.float64)
    rows, cols = h.shape
    jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
    v = np.stack([origin_xy_m[0] + jj * cell_m, origin_xy_m[1] + ii * cell_m, h], -1).reshape(-1, 3)
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return scene_from_mesh(v, faces, "heightfield", kind=kind, floor_z_m=float(h.min()), source=source)


def load_mesh_file(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of an OBJ/PLY/GLB file (every mesh of a GLB scene, in its scene frame)."""
    try:
        import trimesh
    except ImportError as e:  # pinned in requirements.txt
        raise SourceError(Reason.BAD_SCENE, path, "reading a mesh needs trimesh (pip install -r requirements.txt)") from e
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except FileNotFoundError as e:
        raise SourceError(Reason.MISSING_FILE, path, "scene mesh not found") from e
    except Exception as e:  # noqa: BLE001 - any parser failure is the file's
        raise SourceError(Reason.BAD_SCENE, path, f"not a readable OBJ/PLY/GLB mesh: {type(e).__name__}: {e}") from e
    v, f = np.asarray(loaded.vertices, dtype=np.float64), np.asarray(loaded.faces, dtype=np.int64)
    if len(v) == 0 or len(f) == 0:
        raise SourceError(Reason.BAD_SCENE, path, f"mesh has {len(v)} vertices and {len(f)} faces; expected triangles")
    if not np.all(np.isfinite(v)):
        raise SourceError(Reason.NON_FINITE, path, "scene mesh has NaN or inf vertices")
    return v, f


def classify(scene: Scene) -> str:
    """stairs | bench | slope | boxes | terrain, from the top surface's levels above the floor."""
    h = scene.heights_m.astype(np.float64) - scene.floor_z_m
    raised = h > 0.03
    if not raised.any():
        return "terrain"
    gy, gx = np.gradient(h, scene.cell_m)
    grad = np.hypot(gx, gy)[raised]
    if np.median(grad) > 0.08 and np.percentile(grad, 90) < 1.5:  # smooth incline, not box edges
        return "slope"
    levels = np.unique(np.round(h[raised] / 0.02) * 0.02)
    big = [lv for lv in levels if (np.abs(h[raised] - lv) < 0.011).mean() > 0.05]
    if len(big) >= 2:
        return "stairs"
    if len(big) == 1 and 0.3 <= big[0] <= 0.65:
        return "bench"
    return "boxes"


# --------------------------------------------------------------------------------------------- checks
def check_scene(scene: Scene, path: str, joint_pos_w: np.ndarray, feet: tuple[list[int], list[int]],
                pelvis: int, fps: float) -> None:
    """Refuse a scene not in the motion's units or up axis (SourceError with a ledger reason).

    joint_pos_w: (T, J, 3) the motion, z-up metres (already checked); feet: the left and right foot
    joints (ankle, toe); pelvis: the root joint."""
    check_scene_units(np.array(scene.bounds_m[0]), np.array(scene.bounds_m[1]), path, joint_pos_w)
    bad = support_mismatch(scene, joint_pos_w, feet, pelvis, fps)
    if bad > MISMATCH_FRACTION:
        turned = scene_from_mesh(scene.vertices_m.astype(np.float64)[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0]),
                                 scene.faces[:, ::-1], scene.representation, floor_z_m=scene.floor_z_m,
                                 around_xy_m=joint_pos_w[:, pelvis, :2])
        if support_mismatch(turned, joint_pos_w, feet, pelvis, fps) <= MISMATCH_FRACTION:
            raise SourceError(Reason.SCENE_UP_AXIS, path,
                              f"the person's support disagrees with the scene in {bad:.0%} of standing or seated "
                              f"frames (feet or seat more than {SINK_M * 100:.0f} cm inside its surface or "
                              f"{FLOAT_M * 100:.0f} cm above it; at most {MISMATCH_FRACTION:.0%} allowed), and "
                              f"turned from y-up to z-up it agrees; expected a z-up scene like the motion")


def check_scene_units(lo: np.ndarray, hi: np.ndarray, path: str, joint_pos_w: np.ndarray) -> None:
    """Refuse (SCENE_UNITS) a scene whose bounds lo/hi (3,) are not in the motion's metres; cheap: callers
    may run it on raw vertices before rasterising (a millimetre mesh would make a grid of 10^6 x cells)."""
    person_h = float(np.median(joint_pos_w[..., 2].max(1) - joint_pos_w[..., 2].min(1)))
    motion_ext = float(np.max(joint_pos_w.reshape(-1, 3).max(0) - joint_pos_w.reshape(-1, 3).min(0)))
    tall, wide = float(hi[2] - lo[2]), float(np.max(hi[:2] - lo[:2]))
    if tall > MAX_HEIGHT_RATIO * person_h or wide > MAX_EXTENT_RATIO * (motion_ext + 10.0):
        unit = "millimetres" if max(tall, wide) > 1000 * (motion_ext + 1.0) else "centimetres"
        raise SourceError(Reason.SCENE_UNITS, path,
                          f"scene is {tall:.1f} m tall and {wide:.1f} m wide but the person is {person_h:.2f} m tall "
                          f"and moves over {motion_ext:.2f} m; expected a scene in metres like the motion (at most "
                          f"{MAX_HEIGHT_RATIO:g} person heights tall); this looks like {unit}")


def support_mismatch(scene: Scene, joint_pos_w: np.ndarray, feet: tuple[list[int], list[int]], pelvis: int,
                     fps: float) -> float:
    """Share of support events the scene does not explain, the worse of the feet's and the seat's: a still
    foot more than SINK_M inside the surface or FLOAT_M above it; a seated pelvis (low and still) whose
    seat (the highest surface within 10 cm) is above it or more than 35 cm below it."""
    events, bad = 0, 0
    for idx in feet:
        f = joint_pos_w[:, idx]  # (T, k, 3)
        low = f[np.arange(len(f)), f[..., 2].argmin(1)]
        still = np.linalg.norm(np.gradient(low, axis=0), axis=-1) * fps < 0.3
        gap = low[:, 2] - scene.height_at(low[:, :2])
        events += int(still.sum())
        bad += int((still & ((gap < -SINK_M) | (gap > FLOAT_M))).sum())
    p = joint_pos_w[:, pelvis]
    above_feet = p[:, 2] - joint_pos_w[:, [*feet[0], *feet[1]], 2].min(1)  # pelvis over the lowest foot
    seated = (above_feet < 0.7 * float(np.percentile(above_feet, 90))) & (np.linalg.norm(np.gradient(p, axis=0), axis=-1) * fps < 0.3)
    ring = np.array([[0, 0], [0.1, 0], [-0.1, 0], [0, 0.1], [0, -0.1]])
    seat = scene.height_at(p[:, None, :2] + ring).max(1)
    seat_bad = int((seated & ((seat > p[:, 2]) | (p[:, 2] - seat > 0.35))).sum())
    return max(bad / max(events, 1), seat_bad / max(int(seated.sum()), 1))


# ---------------------------------------------------------------------------------------------- store
def scenes_dir(data_root: Path) -> Path:
    return Path(data_root) / "scenes"


def store_scene(data_root: Path, scene: Scene) -> str:
    """Write the scene once under <data root>/scenes/<scene_id>.npz (content-addressed: a second
    sequence with the same scene, or a rerun, writes nothing); returns its id."""
    sid = scene.scene_id
    path = scenes_dir(data_root) / f"{sid}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        publish_bytes(path, scene.to_npz())
    return sid


def load_scene(data_root: Path, scene_id: str) -> Scene:
    path = scenes_dir(data_root) / f"{scene_id}.npz"
    scene = Scene.from_npz(path.read_bytes(), str(path))
    if scene.scene_id != scene_id:
        raise ValueError(f"scene {path} does not match its id (content {scene.scene_id}); the store is corrupt")
    return scene


def data_root_of_work_dir(work_dir: str | Path) -> Path:
    """<root>/work/<stage>/<dataset> -> <root> (robomirror.paths.DataLayout.work_dir)."""
    return Path(work_dir).parents[2]
