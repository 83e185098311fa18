"""Self-collision of the G1, computed with numpy for all worlds at once from the geoms' poses.

The batched simulator (`mujoco.batch`) hands back per-world arrays but not MuJoCo's contact list,
so the penalty's "a contact between two robot geoms" is recomputed here, exactly as MuJoCo decides
it for this model: the robot's collision geoms are capsules and spheres (a sphere is a capsule of
half-length 0), and two of them touch when the distance between their segments is below the sum of
their radii plus margin. The pairs are those MuJoCo's collision filter keeps (contype/conaffinity,
not one body, not parent and child unless filterparent is off, not in an <exclude>). A test checks
this against MuJoCo's own contacts on random configurations.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robomirror.errors import ConfigError

_EPS = 1e-12


@dataclass(frozen=True)
class SelfCollision:
    """Geom pairs that may collide, and each geom's capsule (radius, half-length along local z)."""

    geom_a: np.ndarray  # (P,) geom ids
    geom_b: np.ndarray  # (P,)
    radius_sum_m: np.ndarray  # (P,) r_a + r_b + margin
    half_length_m: np.ndarray  # (ngeom,) 0 for spheres and non-robot geoms
    bound_sq_m2: np.ndarray  # (P,) (r_a + h_a + r_b + h_b + margin)^2 + slack: beyond it the pair cannot touch
    geoms: np.ndarray  # (G,) the robot's collision geoms
    pair_flat: np.ndarray  # (P,) index of each pair into a (G, G) matrix over `geoms`
    pair_row: np.ndarray  # (P,) index of each pair's first geom in `geoms`
    pair_col: np.ndarray  # (P,) of its second

    @classmethod
    def of(cls, m: mujoco.MjModel, floor_geom: int) -> "SelfCollision":
        # the robot's geoms: not the floor nor any other world geom (a scene's height fields, scene.py)
        geoms = [g for g in range(m.ngeom) if (m.geom_contype[g] or m.geom_conaffinity[g]) and g != floor_geom
                 and m.geom_bodyid[g] != 0]
        allowed = (int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CAPSULE))
        bad = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) for g in geoms if int(m.geom_type[g]) not in allowed]
        if bad:
            raise ConfigError(f"self-collision geoms {bad} are neither spheres nor capsules; expected the G1's "
                              "capsule collision model")
        excluded = {int(s) for s in m.exclude_signature}
        filterparent = not m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_FILTERPARENT
        a, b = [], []
        for i, g in enumerate(geoms):
            for h in geoms[i + 1:]:
                b1, b2 = m.body_weldid[m.geom_bodyid[g]], m.body_weldid[m.geom_bodyid[h]]
                if b1 == b2 or not (m.geom_contype[g] & m.geom_conaffinity[h] or m.geom_contype[h] & m.geom_conaffinity[g]):
                    continue
                p1, p2 = m.body_weldid[m.body_parentid[b1]], m.body_weldid[m.body_parentid[b2]]
                if filterparent and ((p1 == b2 and b2 != 0) or (p2 == b1 and b1 != 0)):
                    continue
                lo, hi = min(m.geom_bodyid[g], m.geom_bodyid[h]), max(m.geom_bodyid[g], m.geom_bodyid[h])
                if (lo << 16) + hi in excluded:
                    continue
                a.append(g)
                b.append(h)
        a_, b_ = np.array(a, dtype=int), np.array(b, dtype=int)
        half = np.where(m.geom_type == mujoco.mjtGeom.mjGEOM_CAPSULE, m.geom_size[:, 1], 0.0)
        margin = np.maximum(m.geom_margin[a_], m.geom_margin[b_])
        radius_sum = m.geom_size[a_, 0] + m.geom_size[b_, 0] + margin
        g = np.array(geoms, dtype=int)
        pos = {int(x): k for k, x in enumerate(g)}
        flat = np.array([pos[int(x)] * len(g) + pos[int(y)] for x, y in zip(a_, b_, strict=True)], dtype=int)
        # slack: the broad phase below computes squared distances as |a|^2 + |b|^2 - 2 a.b, which rounds
        return cls(a_, b_, radius_sum, half, (radius_sum + half[a_] + half[b_]) ** 2 + 1e-6, g, flat, flat // len(g),
                   flat % len(g))

    def __call__(self, geom_xpos: np.ndarray, geom_xmat: np.ndarray) -> np.ndarray:
        """geom_xpos (N, ngeom, 3), geom_xmat (N, ngeom, 9) -> (N,) bool: some pair of robot geoms touches."""
        n = len(geom_xpos)
        # broad phase: the pairs whose bounding spheres (centre, radius + half-length) overlap
        c = geom_xpos[:, self.geoms]  # (N, G, 3)
        sq = np.sum(c * c, -1)
        dot = (c @ np.swapaxes(c, -1, -2)).reshape(n, -1)[:, self.pair_flat]  # (N, P): the pairs' a.b only
        d2 = sq[:, self.pair_row] + sq[:, self.pair_col] - 2.0 * dot
        world, pair = np.nonzero(d2 < self.bound_sq_m2)
        out = np.zeros(n, dtype=bool)
        if not len(world):
            return out
        a, b = self.geom_a[pair], self.geom_b[pair]
        za = geom_xmat.reshape(n, -1, 3, 3)[world, a, :, 2] * self.half_length_m[a, None]  # half axis, world frame
        zb = geom_xmat.reshape(n, -1, 3, 3)[world, b, :, 2] * self.half_length_m[b, None]
        dist = segment_distance(geom_xpos[world, a] - za, 2 * za, geom_xpos[world, b] - zb, 2 * zb)
        out[world[dist < self.radius_sum_m[pair]]] = True
        return out


def segment_distance(p1: np.ndarray, d1: np.ndarray, p2: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Closest distance between segments p1 + s d1 and p2 + t d2, s, t in [0, 1] (Ericson, Real-Time
    Collision Detection 5.1.9), over any leading shape; a zero d is a point."""
    r = p1 - p2
    a, e = np.sum(d1 * d1, -1), np.sum(d2 * d2, -1)
    b, c, f = np.sum(d1 * d2, -1), np.sum(d1 * r, -1), np.sum(d2 * r, -1)
    a_ok, e_ok = a > _EPS, e > _EPS
    denom = a * e - b * b
    safe_a = np.where(a_ok, a, 1.0)
    s = np.where(denom > _EPS, np.clip((b * f - c * e) / np.where(denom > _EPS, denom, 1.0), 0.0, 1.0), 0.0)
    s = np.where(e_ok, s, np.clip(-c / safe_a, 0.0, 1.0))  # the second is a point: its nearest on the first
    t = np.where(e_ok, (b * s + f) / np.where(e_ok, e, 1.0), 0.0)
    s = np.where(t < 0.0, np.clip(-c / safe_a, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / safe_a, 0.0, 1.0), s))
    s = np.where(a_ok, s, 0.0)
    t = np.clip(t, 0.0, 1.0)
    # with s fixed by the clamp, t is recomputed so the pair is the closest (Ericson's second pass)
    t = np.where(e_ok, np.clip((b * s + f) / np.where(e_ok, e, 1.0), 0.0, 1.0), 0.0)
    return np.linalg.norm(r + s[..., None] * d1 - t[..., None] * d2, axis=-1)
