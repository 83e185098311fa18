"""Self-collision avoidance for the IK: arm capsules kept off the legs, pelvis, torso and the other arm.

The G1's collision geometry (the MJCF's contact geoms: capsules and spheres) is read from the MuJoCo
model; each pair's distance is the analytic segment-segment distance minus both radii. For every pair
closer than `influence_m`, one velocity-damper row (Faverjon & Tournassoud) joins the QP's inequalities:

    -n^T (J_a(p_a) - J_b(p_b)) dq <= max(gain * (d - d_min), -push)

with p_a, p_b the closest points and n the unit vector from p_b to p_a: the pair may approach at most
`gain` of its remaining margin per step, and a pair inside the margin must separate by up to `push`
per step. Where that cannot be met together with the joint limits, the IK solves the step without
these rows (`retarget.ik.ik_velocity`): avoidance never makes a clip fail.

The arms are what collides in real mocap (hands at the sides: the G1's hips are wider than a human's).
Legs are left to the tasks: kneeling and sitting on the heels touch for real, and keeping the feet
apart cost the punch clip 11 cm of worst-keypoint error in the bench.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import pinocchio as pin
from pink.limits import Limit

ARM_LINKS = ("shoulder_yaw_link", "elbow_link", "wrist_roll_link", "wrist_pitch_link", "wrist_yaw_link")
BODY_LINKS = ("pelvis", "torso_link", "{side}_hip_roll_link", "{side}_hip_yaw_link", "{side}_knee_link")


@dataclass(frozen=True)
class Capsule:
    body: str
    a_b: np.ndarray  # (3,) segment end in the body frame [m] (a sphere: a == b)
    b_b: np.ndarray
    radius_m: float


def contact_capsules(mj: mujoco.MjModel, bodies: set[str]) -> list[Capsule]:
    """The contact capsules and spheres of `bodies` (geoms that collide: contype or conaffinity set)."""
    out = []
    for g in range(mj.ngeom):
        body = mj.body(int(mj.geom_bodyid[g])).name
        if body not in bodies or not (mj.geom_contype[g] or mj.geom_conaffinity[g]):
            continue
        kind = int(mj.geom_type[g])
        if kind not in (int(mujoco.mjtGeom.mjGEOM_CAPSULE), int(mujoco.mjtGeom.mjGEOM_SPHERE)):
            continue
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, mj.geom_quat[g])
        half = float(mj.geom_size[g][1]) if kind == int(mujoco.mjtGeom.mjGEOM_CAPSULE) else 0.0
        axis = rot.reshape(3, 3)[:, 2] * half
        pos = mj.geom_pos[g].copy()
        out.append(Capsule(body, pos - axis, pos + axis, float(mj.geom_size[g][0])))
    return out


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (N, 3) arrays (np.cross costs ~20 us of axis handling per call)."""
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def segment_distances(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closest points between segments p0-p1 and q0-q1, batched (N, 3): (distance (N,), on p (N, 3), on q)."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e = (d1 * d1).sum(-1), (d2 * d2).sum(-1)
    f, c, b = (d2 * r).sum(-1), (d1 * r).sum(-1), (d1 * d2).sum(-1)
    eps = 1e-12
    denom = a * e - b * b
    s = np.where(denom > eps, np.clip((b * f - c * e) / np.maximum(denom, eps), 0.0, 1.0), 0.0)
    s = np.where(e > eps, s, np.clip(-c / np.maximum(a, eps), 0.0, 1.0))  # q a point: nearest point of p to it
    s = np.where(a > eps, s, 0.0)
    t = np.where(e > eps, (b * s + f) / np.maximum(e, eps), 0.0)
    # t outside [0, 1]: clamp it and recompute s for that end of q
    t_lo, t_hi = t < 0.0, t > 1.0
    t = np.clip(t, 0.0, 1.0)
    s = np.where(t_lo & (a > eps), np.clip(-c / np.maximum(a, eps), 0.0, 1.0), s)
    s = np.where(t_hi & (a > eps), np.clip((b - c) / np.maximum(a, eps), 0.0, 1.0), s)
    on_p, on_q = p0 + d1 * s[:, None], q0 + d2 * t[:, None]
    return np.linalg.norm(on_p - on_q, axis=-1), on_p, on_q


class SelfCollisionLimit(Limit):
    """Velocity-damper rows for the arm capsule pairs closer than `influence_m` (see the module doc)."""

    def __init__(self, model: pin.Model, mj: mujoco.MjModel, d_min_m: float = 0.01, influence_m: float = 0.10,
                 gain: float = 0.5, push_m: float = 0.005) -> None:
        arms = {f"{side}_{link}" for side in ("left", "right") for link in ARM_LINKS}
        body = {link.format(side=side) for side in ("left", "right") for link in BODY_LINKS}
        caps = contact_capsules(mj, arms | body)

        def avoided(a: str, b: str) -> bool:
            other_side = a.split("_")[0] != b.split("_")[0]
            return (a in arms and b in body) or (b in arms and a in body) or (a in arms and b in arms and other_side)

        pairs = [(i, j) for i in range(len(caps)) for j in range(i + 1, len(caps)) if avoided(caps[i].body, caps[j].body)]
        self.model = model
        self.capsules = caps
        self.frame_ids = [int(model.getFrameId(c.body)) for c in caps]
        self.pairs = np.array(pairs, dtype=int).reshape(-1, 2)
        self.radii = np.array([c.radius_m for c in caps])
        self.ends_b = np.stack([np.stack([c.a_b, c.b_b]) for c in caps])  # (C, 2, 3)
        self.d_min_m, self.influence_m, self.gain, self.push_m = d_min_m, influence_m, gain, push_m

    def distances(self, data: pin.Data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(distance (P,) [m] between capsule surfaces, closest point on the arm capsule, on the other)."""
        placements = [data.oMf[fid] for fid in self.frame_ids]
        rot = np.stack([p.rotation for p in placements])
        ends = np.einsum("cij,cej->cei", rot, self.ends_b) + np.stack([p.translation for p in placements])[:, None]
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        dist, on_i, on_j = segment_distances(ends[i, 0], ends[i, 1], ends[j, 0], ends[j, 1])
        return dist - self.radii[i] - self.radii[j], on_i, on_j

    def compute_qp_inequalities(self, configuration, dt: float):
        model, data = self.model, configuration.data
        d, on_i, on_j = self.distances(data)
        active = np.flatnonzero(d < self.influence_m)
        if not len(active):
            return None
        axis = on_i[active] - on_j[active]
        norm = np.linalg.norm(axis, axis=-1, keepdims=True)
        n = np.where(norm > 1e-9, axis / np.maximum(norm, 1e-9), 0.0)  # crossing segments: no direction, empty row
        caps_i, caps_j = self.pairs[active, 0], self.pairs[active, 1]
        used = np.unique(np.concatenate([caps_i, caps_j]))
        slot = np.full(len(self.capsules), -1)
        slot[used] = np.arange(len(used))
        # one world-aligned Jacobian and origin per capsule body in use, then every row at once:
        # d(distance) = n . (v_a + w_a x r_a) - n . (v_b + w_b x r_b) = n^T J_v + (r x n)^T J_w per end
        jac = np.stack([pin.getFrameJacobian(model, data, self.frame_ids[c], pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
                        for c in used])
        origin = np.stack([data.oMf[self.frame_ids[c]].translation for c in used])
        grad = np.zeros((len(active), model.nv))
        for caps, points, sign in ((caps_i, on_i[active], 1.0), (caps_j, on_j[active], -1.0)):
            k = slot[caps]
            lever = points - origin[k]
            grad += sign * (np.einsum("ri,rij->rj", n, jac[k, :3]) + np.einsum("ri,rij->rj", _cross(lever, n), jac[k, 3:]))
        h = np.maximum(self.gain * (d[active] - self.d_min_m), -self.push_m)
        return -grad, h
