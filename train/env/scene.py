"""The clip's scene in the simulator (issue 22): stairs, a bench, a slope as MuJoCo height fields.

One model holds one height-field geom per distinct scene of the motion library, each built from the
scene's top-surface grid (`ingest.scene.Scene.heights_m`, at the robot's scale: retargeting scales the
human's scene by the subject's `root_scale`, `retarget.scene_ground.robot_scene`). Every scene geom is
disabled in the model (contype = conaffinity = 0 after compiling); at reset each world enables only
its clip's scene geom through per-world `geom_contype` / `geom_conaffinity` rows of the env's
`mujoco.batch` (the floor's collision bits), so many worlds on many scenes step in one batch and share
the meshes. A library without scene clips builds the unchanged model and never touches these fields,
so flat clips step bit-identically to the deploy sim. The floor plane stays: a scene ends, the floor goes
on; where a scene cell lies at floor height the foot touches both, at the same height.

The height-map observation (the contract's optional `height_map_rel_root_m` slice, the grid of
`retarget.scene_ground.local_height_map`) is read from each world's actual root pose and its clip's scene
(not from the reference), for all worlds in one gather (`SceneHeights`).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import mujoco.batch
import numpy as np

from ingest.scene import Scene
from retarget.scene_ground import heading_yaw, height_map_offsets
from robomirror import g1_contract as g1

SCENE_GEOM_PREFIX = "scene_hfield_"
BASE_M = 0.1  # the height field's solid depth below its lowest cell [m] (MuJoCo hfield size[3])
MIN_TOP_M = 1e-3  # elevation range of a flat grid (MuJoCo needs a positive one)


def add_scene_geoms(spec: mujoco.MjSpec, scenes: tuple[Scene, ...]) -> None:
    """One hfield asset and one world geom per scene, compiled with the floor's collision bits: MuJoCo
    leaves a geom compiled with contype = conaffinity = 0 out of collision detection for good, so a
    per-world bit set later would never collide; `disable_scene_geoms` clears them after compiling.

    MuJoCo's hfield: row r, column c of the (nrow, ncol) elevation grid lies at x = -size[0] + 2 size[0] c /
    (ncol - 1), y = -size[1] + 2 size[1] r / (nrow - 1) about the geom's position, at height
    elevation * size[2] above it; our grid's [i, j] is at origin + (j, i) * cell, so rows are y as in MuJoCo."""
    for k, sc in enumerate(scenes):
        h = np.asarray(sc.heights_m, dtype=np.float64) - sc.floor_z_m
        rows, cols = h.shape
        top = max(float(h.max()), MIN_TOP_M)
        rx, ry = (cols - 1) * sc.cell_m / 2, (rows - 1) * sc.cell_m / 2
        spec.add_hfield(name=f"{SCENE_GEOM_PREFIX}{k}", nrow=rows, ncol=cols, size=[rx, ry, top, BASE_M],
                        userdata=np.clip(h / top, 0.0, 1.0).ravel().tolist())
        spec.worldbody.add_geom(name=f"{SCENE_GEOM_PREFIX}{k}", type=mujoco.mjtGeom.mjGEOM_HFIELD,
                                hfieldname=f"{SCENE_GEOM_PREFIX}{k}", contype=1, conaffinity=1,
                                pos=[sc.origin_xy_m[0] + rx, sc.origin_xy_m[1] + ry, sc.floor_z_m],
                                rgba=[0.62, 0.55, 0.45, 1])


def disable_scene_geoms(m: mujoco.MjModel) -> mujoco.MjModel:
    """The compiled model's scene geoms collide with nothing until `SceneGeoms.enable` (per world)."""
    for g in range(m.ngeom):
        if (mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or "").startswith(SCENE_GEOM_PREFIX):
            m.geom_contype[g] = m.geom_conaffinity[g] = 0
    return m


@dataclass(frozen=True)
class SceneGeoms:
    """The scene geoms of a built model and the collision bits a world gives the one it plays on."""

    geoms: np.ndarray  # (S,) geom id of scene k
    contype: int  # the floor's bits: what an enabled scene collides with
    conaffinity: int

    @classmethod
    def of(cls, m: mujoco.MjModel, n_scenes: int) -> "SceneGeoms":
        ids = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{SCENE_GEOM_PREFIX}{k}")
                        for k in range(n_scenes)], dtype=int)
        if (ids < 0).any():
            raise ValueError(f"the model lacks scene geoms {[int(k) for k in np.flatnonzero(ids < 0)]}; build it "
                             "with train.env.actuation.build_model(sim, scenes=library.scenes)")
        floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        return cls(ids, int(m.geom_contype[floor]), int(m.geom_conaffinity[floor]))

    def enable(self, batch: mujoco.batch.Batch, ids: np.ndarray, scene: np.ndarray) -> None:
        """Worlds `ids` collide with scene `scene[i]` only (-1: none, the flat floor)."""
        ids, scene = np.asarray(ids, dtype=int), np.asarray(scene, dtype=int)
        on = scene[:, None] == np.arange(len(self.geoms))[None, :]  # (n, S)
        batch.expand("geom_contype")[ids[:, None], self.geoms[None, :]] = np.where(on, self.contype, 0)
        batch.expand("geom_conaffinity")[ids[:, None], self.geoms[None, :]] = np.where(on, self.conaffinity, 0)


@dataclass(frozen=True)
class SceneHeights:
    """Every scene's top-surface grid padded into one array, plus the flat floor as one more scene, so the
    surface under any points of any worlds is one gather (numpy over all worlds, no loop over worlds or
    scenes). Bilinear in each grid and the scene's floor outside it, as `ingest.scene.Scene.height_at`."""

    heights_m: np.ndarray  # (S + 1, H, W): scene k's grid in its top-left corner; [S] the flat floor
    origin_xy_m: np.ndarray  # (S + 1, 2)
    cell_m: np.ndarray  # (S + 1,)
    rows: np.ndarray  # (S + 1,) int: the grid's own size inside the padding
    cols: np.ndarray  # (S + 1,) int
    floor_z_m: np.ndarray  # (S + 1,)

    @classmethod
    def of(cls, scenes: tuple[Scene, ...]) -> "SceneHeights":
        grids = [np.asarray(sc.heights_m, dtype=np.float64) for sc in scenes] + [np.zeros((2, 2))]  # flat: z = 0
        h = np.zeros((len(grids), max(g.shape[0] for g in grids), max(g.shape[1] for g in grids)))
        for k, g in enumerate(grids):
            h[k, :g.shape[0], :g.shape[1]] = g
        return cls(h, np.array([sc.origin_xy_m for sc in scenes] + [(0.0, 0.0)], dtype=np.float64),
                   np.array([sc.cell_m for sc in scenes] + [1.0], dtype=np.float64),
                   np.array([g.shape[0] for g in grids]), np.array([g.shape[1] for g in grids]),
                   np.array([sc.floor_z_m for sc in scenes] + [0.0], dtype=np.float64))

    def height_at(self, scene: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """(N, ...) surface height [m] under points xy (N, ..., 2) of world n on scene[n] (-1: the flat floor)."""
        xy = np.asarray(xy, dtype=np.float64)
        k = np.asarray(scene, dtype=np.intp).copy()
        k[k < 0] = len(self.heights_m) - 1
        k = k.reshape((-1,) + (1,) * (xy.ndim - 2))  # broadcast over each world's points
        rows, cols, cell = self.rows[k], self.cols[k], self.cell_m[k]
        u = (xy[..., 0] - self.origin_xy_m[k, 0]) / cell
        v = (xy[..., 1] - self.origin_xy_m[k, 1]) / cell
        inside = (u >= 0) & (v >= 0) & (u <= cols - 1) & (v <= rows - 1)
        u, v = np.minimum(np.maximum(u, 0.0), cols - 1), np.minimum(np.maximum(v, 0.0), rows - 1)
        j0 = np.minimum(u.astype(np.intp), np.maximum(cols - 2, 0))  # u >= 0: the cast floors it
        i0 = np.minimum(v.astype(np.intp), np.maximum(rows - 2, 0))
        fu, fv = u - j0, v - i0
        width = self.heights_m.shape[2]
        at = (k * self.heights_m.shape[1] + i0) * width + j0  # flat index of corner (i0, j0)
        dj, di = (j0 + 1 < cols).astype(np.intp), (i0 + 1 < rows) * width  # to (i0, j1) and (i1, j0)
        h = self.heights_m.reshape(-1)
        h00, h01, h10, h11 = h[at], h[at + dj], h[at + di], h[at + di + dj]
        out = (1 - fv) * ((1 - fu) * h00 + fu * h01) + fv * ((1 - fu) * h10 + fu * h11)
        return np.where(inside, out, self.floor_z_m[k])

    def observation(self, scene: np.ndarray, root_pos_w: np.ndarray, root_quat_wxyz: np.ndarray) -> np.ndarray:
        """(N, 121) float32: the contract's `height_map_rel_root_m` slice of every world at once, the grid
        of `retarget.scene_ground.local_height_map` (level, in the root's heading frame, surface minus root
        height [m], row-major as `g1_contract` describes it) around each world's actual root, on its
        clip's scene (scene[n] = -1: the flat floor, every entry -root height)."""
        root_pos_w = np.asarray(root_pos_w, dtype=np.float64)
        yaw = heading_yaw(root_quat_wxyz)
        c, s = np.cos(yaw)[:, None, None], np.sin(yaw)[:, None, None]
        off = height_map_offsets(g1.HEIGHT_MAP_N, g1.HEIGHT_MAP_CELL_M)
        xy = root_pos_w[:, None, None, :2] + np.stack([c * off[..., 0] - s * off[..., 1],
                                                       s * off[..., 0] + c * off[..., 1]], -1)
        hm = self.height_at(scene, xy) - root_pos_w[:, 2, None, None]
        return hm.astype(np.float32).reshape(len(root_pos_w), g1.HEIGHT_MAP_DIM)

