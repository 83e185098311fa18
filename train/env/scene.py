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

The height-map observation (`local_height_map`, the grid of `retarget.scene_ground`) is read from the
world's actual root pose and its clip's scene, not from the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import mujoco.batch
import numpy as np

from ingest.scene import Scene
from retarget.scene_ground import local_height_map

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


def height_map_observation(scenes: tuple[Scene, ...], scene_of_world: np.ndarray, root_pos_w: np.ndarray,
                           root_quat_wxyz: np.ndarray) -> np.ndarray:
    """(N, 121) each world's local height map (11 x 11, row-major: forward rows, left columns) around its
    root, on its clip's scene or the flat floor (-1), flattened for the policy."""
    n = len(root_pos_w)
    out = np.empty((n, 11, 11), dtype=np.float32)
    for k in np.unique(scene_of_world):
        w = np.flatnonzero(scene_of_world == k)
        out[w] = local_height_map(None if k < 0 else scenes[k], root_pos_w[w], root_quat_wxyz[w])
    return out.reshape(n, -1)
