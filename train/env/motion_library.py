"""Reference motions for the tracker: G1 motions from the retarget shards, at the policy rate.

A clip is selected by SQL over the catalog, read from the retarget shards (never from a pickle),
resampled to 50 Hz and expanded once, with the env's own model, into every quantity the
observations and rewards need: joint positions/velocities, root pose and velocities, the 27
keypoints' world positions, orientations and velocities, foot contacts, plus the clip's motion
latent (the VAE's, or the DiT's reconstruction `v2m`) and its provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from retarget.motion import RobotMotion
from robomirror import g1_contract as g1
from robomirror.errors import RoboMirrorError
from robomirror.rotations import quat_wxyz_to_matrix
from train.env.actuation import ModelIndex, keypoints_w


class MotionError(RoboMirrorError):
    """A reference motion the tracker cannot use (wrong joints, NaN, too short)."""


@dataclass
class Clip:
    clip_id: str
    motion: RobotMotion
    latent: np.ndarray  # (latent_dim,) float32
    provenance: dict = field(default_factory=dict)
    scene: object = None  # ingest.scene.Scene at the robot's scale (issue 22); None: the flat floor


def _angular_velocity(quat_wxyz: np.ndarray, dt: float) -> np.ndarray:
    """World-frame angular velocity (T, ..., 3) [rad/s] by finite differences of orientations."""
    shape = quat_wxyz.shape[:-1]
    r = Rotation.from_quat(quat_wxyz.reshape(-1, 4), scalar_first=True)
    n = shape[0]
    out = np.zeros(shape + (3,))
    if n > 1:
        r = r.as_matrix().reshape(shape + (3, 3))
        rel = np.einsum("t...ij,t...kj->t...ik", r[1:], r[:-1])
        w = Rotation.from_matrix(rel.reshape(-1, 3, 3)).as_rotvec().reshape((n - 1,) + shape[1:] + (3,)) / dt
        out[:-1], out[-1] = w, w[-1]
    return out


def validate(clip: Clip, latent_dim: int) -> RobotMotion:
    m = clip.motion
    if tuple(m.joint_names) != g1.POLICY_JOINTS:
        missing = [j for j in g1.POLICY_JOINTS if j not in m.joint_names]
        if missing:
            raise MotionError(f"clip {clip.clip_id}: joint order {len(m.joint_names)} joints lacks {missing[:3]}...; "
                              f"expected the 23 policy joints {g1.POLICY_JOINTS[:2]}... (retarget with g1_23dof)")
        idx = [list(m.joint_names).index(j) for j in g1.POLICY_JOINTS]
        m = RobotMotion(m.fps, g1.POLICY_JOINTS, m.root_pos_w, m.root_quat_wxyz, m.joint_pos[:, idx], m.contact)
    for name, arr in (("root_pos_w", m.root_pos_w), ("root_quat_wxyz", m.root_quat_wxyz), ("joint_pos", m.joint_pos)):
        if not np.all(np.isfinite(arr)):
            raise MotionError(f"clip {clip.clip_id}: {name} has NaN/inf values; expected a finite motion")
    if not m.fps > 0 or m.n_frames < 2:
        raise MotionError(f"clip {clip.clip_id}: {m.n_frames} frames at {m.fps} fps; expected >= 2 frames, fps > 0")
    if clip.latent.shape != (latent_dim,) or not np.all(np.isfinite(clip.latent)):
        raise MotionError(f"clip {clip.clip_id}: motion latent of shape {clip.latent.shape}; "
                          f"expected ({latent_dim},) finite values")
    return m.resampled(g1.POLICY_HZ)


class MotionLibrary:
    """Every clip's frames concatenated; `frame(ids, t)` gathers one frame per env."""

    def __init__(self, clips: list[Clip], model: mujoco.MjModel, latent_dim: int = 256) -> None:
        if not clips:
            raise MotionError("no reference motions: the selection matched no clip")
        self.clip_ids = [c.clip_id for c in clips]
        self.provenance = [c.provenance for c in clips]
        # issue 22: the distinct scenes (one geom each in the env's model) and each clip's, -1 on the floor
        ids = {c.scene.scene_id: c.scene for c in clips if c.scene is not None}
        self.scenes = tuple(ids[k] for k in sorted(ids))
        order = {k: i for i, k in enumerate(sorted(ids))}
        self.scene_of_clip = np.array([-1 if c.scene is None else order[c.scene.scene_id] for c in clips], dtype=int)
        ix = ModelIndex.of(model)
        data = mujoco.MjData(model)
        dt = 1.0 / g1.POLICY_HZ
        parts: dict[str, list[np.ndarray]] = {k: [] for k in (
            "joint_pos", "joint_vel", "root_pos", "root_quat", "root_lin_vel", "root_ang_vel", "kp_pos", "kp_quat",
            "kp_lin_vel", "kp_ang_vel", "contact")}
        lengths = []
        for c in clips:
            m = validate(c, latent_dim)
            n = m.n_frames
            kp_pos, kp_quat = np.empty((n, g1.N_KEYPOINTS, 3)), np.empty((n, g1.N_KEYPOINTS, 4))
            for t in range(n):
                data.qpos[:3], data.qpos[3:7] = m.root_pos_w[t], m.root_quat_wxyz[t]
                data.qpos[ix.qpos_adr] = m.joint_pos[t]
                mujoco.mj_kinematics(model, data)
                kp_pos[t], kp_quat[t] = keypoints_w(ix, data)
            parts["joint_pos"].append(m.joint_pos)
            parts["joint_vel"].append(np.gradient(m.joint_pos, dt, axis=0))
            parts["root_pos"].append(m.root_pos_w)
            parts["root_quat"].append(m.root_quat_wxyz)
            parts["root_lin_vel"].append(np.gradient(m.root_pos_w, dt, axis=0))
            parts["root_ang_vel"].append(_angular_velocity(m.root_quat_wxyz, dt))
            parts["kp_pos"].append(kp_pos)
            parts["kp_quat"].append(kp_quat)
            parts["kp_lin_vel"].append(np.gradient(kp_pos, dt, axis=0))
            parts["kp_ang_vel"].append(_angular_velocity(kp_quat, dt))
            parts["contact"].append(m.contact.astype(np.float64) if m.contact is not None else np.ones((n, 2)))
            lengths.append(n)
        self.arrays = {k: np.concatenate(v).astype(np.float64) for k, v in parts.items()}
        self.arrays["kp_rot"] = quat_wxyz_to_matrix(self.arrays["kp_quat"])  # (F, 27, 3, 3), once, not per step
        self.lengths = np.array(lengths)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.latents = np.stack([c.latent for c in clips]).astype(np.float32)

    def subset(self, clips: list[int]) -> "MotionLibrary":
        """A library of some of this one's clips (no recomputation)."""
        out = object.__new__(MotionLibrary)
        out.clip_ids = [self.clip_ids[i] for i in clips]
        out.provenance = [self.provenance[i] for i in clips]
        idx = np.concatenate([np.arange(self.starts[i], self.starts[i] + self.lengths[i]) for i in clips])
        out.arrays = {k: v[idx] for k, v in self.arrays.items()}
        out.lengths = self.lengths[clips]
        out.starts = np.concatenate([[0], np.cumsum(out.lengths)[:-1]])
        out.latents = self.latents[clips]
        keep = sorted({int(self.scene_of_clip[i]) for i in clips} - {-1})
        out.scenes = tuple(self.scenes[k] for k in keep)
        out.scene_of_clip = np.array([keep.index(int(self.scene_of_clip[i])) if self.scene_of_clip[i] >= 0 else -1
                                      for i in clips], dtype=int)
        return out

    def ground(self, clip: int) -> str:
        """'scene' for a clip performed on a scene, else 'flat' (the catalog's `ground`)."""
        return "scene" if self.scene_of_clip[clip] >= 0 else "flat"

    @property
    def n_clips(self) -> int:
        return len(self.clip_ids)

    def frame(self, clip: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Frame t of clip per env (t clamped to the clip's last frame)."""
        idx = self.starts[clip] + np.clip(t, 0, self.lengths[clip] - 1)
        return {k: v[idx] for k, v in self.arrays.items()}


LATENT_SOURCES = ("vae", "v2m")


def clip_scene(layout, report: dict):
    """The robot-scale scene a retargeted clip was grounded on (its retarget.json `scene`), or None."""
    sc = report.get("scene")
    if not sc:
        return None
    from ingest.scene import load_scene
    from retarget.scene_ground import robot_scene

    return robot_scene(load_scene(layout.root, sc["scene_id"]), float(sc["scale"]))


def select_clips(layout, where: str = "TRUE", latents: str = "vae", dit_run: str | None = None,
                 limit: int | None = None) -> list[Clip]:
    """Clips chosen by a SQL condition over the catalog (`store_clips` columns plus `split`), with
    their G1 motions from the retarget shards and the chosen motion latent.

    latents="vae": the motion VAE's latent of the clip's own motion; "v2m": the DiT's reconstruction
    from the clip's video (only clips the DiT run reconstructed, i.e. its test split).
    """
    from catalog.nearest import find_dit_run
    from catalog.sql import query, store_models
    from retarget.interop import load_clip_motion

    if latents not in LATENT_SOURCES:
        raise MotionError(f"--latents {latents!r}: expected one of {LATENT_SOURCES}")
    models = store_models(layout)
    if models is None:
        raise MotionError(f"no latent store under {layout.root}: run `make latents` first")
    vae_id, vlm_id, _ = models
    split = ("WITH s AS (SELECT clip_id, side AS split FROM store_splits "
             "WHERE split_id = (SELECT min(split_id) FROM store_splits))")
    if latents == "vae":
        sql = (f"{split} SELECT c.clip_id, c.dataset, c.view, c.vae_id, c.vlm_id, c.retarget_shard, c.motion_latent "
               f"AS latent, s.split, NULL AS dit_run FROM store_clips c LEFT JOIN s USING (clip_id) WHERE ({where})")
    else:
        run = find_dit_run(layout, vae_id, vlm_id, dit_run).name
        sql = (f"{split}, v AS (SELECT clip_id, pooled, run_id FROM store_v2m WHERE run_id = '{run}') "
               f"SELECT c.clip_id, c.dataset, c.view, c.vae_id, c.vlm_id, c.retarget_shard, v.pooled AS latent, "
               f"s.split, v.run_id AS dit_run FROM store_clips c JOIN v USING (clip_id) LEFT JOIN s USING (clip_id) "
               f"WHERE ({where})")
    sql += " ORDER BY c.clip_id" + (f" LIMIT {int(limit)}" if limit else "")
    rows = query(layout, sql).fetchall()
    cols = ("clip_id", "dataset", "view", "vae_id", "vlm_id", "retarget_shard", "latent", "split", "dit_run")
    clips = []
    for row in rows:
        r = dict(zip(cols, row, strict=True))
        motion, report = load_clip_motion(layout, r["clip_id"])
        latent = np.asarray(r.pop("latent"), dtype=np.float32)
        scene = clip_scene(layout, report)
        r["ground"] = "flat" if scene is None else "scene"
        clips.append(Clip(r["clip_id"], motion, latent, r | {"latents": latents}, scene))
    if not clips:
        raise MotionError(f"no clip matches --where {where!r} with {latents} latents; "
                          "try: python -m catalog sql \"SELECT clip_id, view, stable FROM store_clips\"")
    return clips
