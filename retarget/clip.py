"""Retarget one clip: human keypoints -> shape fit -> contacts -> pink IK -> smoothing -> grounding
-> metrics and stability verdict."""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from retarget.config import RetargetConfig
from retarget.contacts import contact_labels, ground_offsets, support_heights
from retarget.correspondence import table_for
from retarget.g1 import METRIC_KEYPOINTS
from retarget.ik import IKConfig, solve_clip
from retarget.metrics import (
    foot_skate_cm_s,
    limit_violations,
    mpkpe_aligned_worst,
    penetration_cm,
    self_collision_frames,
    velocity_violations,
)
from retarget.motion import RobotMotion
from retarget.robot import G1
from retarget.scene_ground import assess as assess_on_scene
from retarget.scene_ground import (
    float_cm,
    foot_clearance,
    ground_offsets_scene,
    keypoint_heights,
    keypoint_rest_height,
    lift_feet_out_of_scene,
    robot_scene,
    scene_contact_labels,
    seated,
)
from retarget.shape_fit import ShapeFit, apply_shape, fit_shape
from retarget.stability import StabilityConfig, assess


@dataclass
class ClipResult:
    motion: RobotMotion
    report: dict  # metrics, verdicts, shape fit (retarget.json)


def human_keypoints(joint_names: tuple[str, ...], joint_pos_w: np.ndarray) -> tuple[str, dict[str, np.ndarray]]:
    table_name, table = table_for(joint_names)
    idx = {n: i for i, n in enumerate(joint_names)}
    return table_name, {kp: joint_pos_w[:, idx[h]].astype(np.float64) for kp, h in table.items()}


def robot_rest_keypoints(robot: G1, names) -> dict[str, np.ndarray]:
    kp = robot.keypoints(robot.zero_qpos[None], tuple(names))[0]
    return {n: kp[i][None] for i, n in enumerate(names)}


def _continuous_quats(q: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    for t in range(1, len(q)):
        if np.dot(q[t], q[t - 1]) < 0:
            q[t] = -q[t]
    return q


@functools.lru_cache(maxsize=4)
def _body_model(model_type: str, body_models_dir: str):
    """One loaded SMPL/SMPL-X model per process: loading it per clip cost ~3/4 of the retarget time."""
    from ingest.body_model import load_body_model

    return load_body_model(model_type, Path(body_models_dir))


def _betas_refit(robot: G1, joint_names, params, cfg: RetargetConfig, shape: ShapeFit | None):
    """Joints re-posed with betas fitted to the G1 (real model files only), or None."""
    if not cfg.body_models_dir or params is None or not {"root_orient", "pose_body", "trans", "betas"} <= set(params):
        return None, None
    from retarget.betas_fit import BetasFit, fit_betas, repose

    body = _body_model("smplx" if len(joint_names) == 55 else "smpl", str(cfg.body_models_dir))
    table_name, table = table_for(joint_names)
    if shape is not None and shape.betas_fit is not None:
        fit = BetasFit(**shape.betas_fit)
    else:
        fit = fit_betas(body, table, robot_rest_keypoints(robot, table.keys()))
    return repose(body, params, fit), fit


CLEARANCE_BAND_M = (0.05, 0.12)  # near the floor a foot keeps its height; above the band, the scaled one


def keep_floor_clearance(human: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feet near the floor keep the human's clearance instead of the scaled one.

    Scaling a body to the G1 (~0.8x) scales a swing foot's 2.5 cm clearance to 2 cm: the robot's sole
    then skims the floor at walking speed, which the skate metric rightly counts. Clearance is a
    contact property, not a proportion: below the band's lower edge the feet (ankle and toe) are
    lifted to the human's height above its floor, above the upper edge they keep the scaled height,
    and in between the lift fades out. The clip's floor is the 5th percentile of its lowest foot."""
    out = dict(targets)
    floors = []
    for kp in (human, targets):
        low = np.minimum.reduce([kp[f"{s}_{p}"][:, 2] for s in ("left", "right") for p in ("ankle", "toe")])
        floors.append(float(np.percentile(low, 5)))
    lo, hi = CLEARANCE_BAND_M
    for side in ("left", "right"):
        h_low = np.minimum(human[f"{side}_ankle"][:, 2], human[f"{side}_toe"][:, 2]) - floors[0]
        t_low = np.minimum(targets[f"{side}_ankle"][:, 2], targets[f"{side}_toe"][:, 2]) - floors[1]
        fade = np.clip((hi - h_low) / (hi - lo), 0.0, 1.0)
        lift = fade * np.maximum(h_low - t_low, 0.0)
        for part in ("ankle", "toe"):
            p = out[f"{side}_{part}"].copy()
            p[:, 2] += lift
            out[f"{side}_{part}"] = p
    return out


def keep_sole_clearance(robot: G1, human: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                        contact: np.ndarray) -> dict[str, np.ndarray]:
    """A swing foot's lowest sole point stays at least as high above the floor as the human's.

    The G1's sole is not the human's: with the ankle on its target and the foot at its target
    orientation, the G1's heel (5.4 cm behind the ankle) can reach the floor while the human's is still
    above it, so the robot skims the floor at walking speed on heel strike. For frames where a foot is
    not in contact, the ankle and toe targets are lifted by the shortfall, computed from the robot's
    own sole points under the target foot rotation; the lift fades out above CLEARANCE_BAND_M."""
    from retarget.ik import foot_pitch, foot_rotations

    out = dict(targets)
    sole = robot.sole_points_ankle_frame()  # side -> (P, 3) lowest surface points in the ankle frame
    t_low = np.minimum.reduce([targets[f"{s}_{p}"][:, 2] for s in ("left", "right") for p in ("ankle", "toe")])
    h_low = np.minimum.reduce([human[f"{s}_{p}"][:, 2] for s in ("left", "right") for p in ("ankle", "toe")])
    t_floor, h_floor = float(np.percentile(t_low, 5)), float(np.percentile(h_low, 5))
    lo, hi = CLEARANCE_BAND_M
    human_low, robot_low = {}, {}
    for k, side in enumerate(("left", "right")):
        in_contact = contact[:, k]
        # the human's sole: its ankle height in contact, below the ankle; or the toe, whichever is lower
        ankle_h = human[f"{side}_ankle"][:, 2] - h_floor
        rest = float(np.median(ankle_h[in_contact])) if in_contact.any() else float(np.percentile(ankle_h, 5))
        human_low[side] = np.minimum(ankle_h - rest, human[f"{side}_toe"][:, 2] - h_floor).clip(min=0.0)
        pitch = foot_pitch(targets, side)
        flat = float(np.median(pitch[in_contact] if in_contact.any() else pitch))
        rot = foot_rotations(targets, side, flat)
        robot_low[side] = (targets[f"{side}_ankle"][:, 2] - t_floor
                           + np.einsum("tij,pj->tpi", rot, sole[side])[..., 2].min(1))
    # grounding (after the IK) shifts the root so a stance foot's sole is on the floor, and interpolates
    # that shift through frames without contact (lying, flight): the swing foot moves with it
    stance = np.where(contact, np.stack([robot_low["left"], robot_low["right"]], 1), np.inf).min(1)
    known = np.isfinite(stance)
    frames = np.arange(len(stance))
    shift = np.interp(frames, frames[known], stance[known]) if known.any() else np.zeros(len(stance))
    for k, side in enumerate(("left", "right")):
        fade = np.clip((hi - human_low[side]) / (hi - lo), 0.0, 1.0)
        lift = np.where(contact[:, k], 0.0, fade * np.maximum(human_low[side] - (robot_low[side] - shift), 0.0))
        for part in ("ankle", "toe"):
            p = out[f"{side}_{part}"].copy()
            p[:, 2] += lift
            out[f"{side}_{part}"] = p
    return out


def retarget_clip(robot: G1, joint_names: tuple[str, ...], joint_pos_w: np.ndarray, fps: float,
                  cfg: RetargetConfig, shape: ShapeFit | None = None,
                  params: dict[str, np.ndarray] | None = None, scene=None) -> ClipResult:
    """joint_pos_w: (T, J, 3) human joints [m], z-up. `shape`: a cached fit for this subject.
    params: the clip's body-model parameters (z-up); with `cfg.body_models_dir` they drive a betas fit.
    scene: the `ingest.scene.Scene` the human moved on (human metres); None: a flat floor at z = 0."""
    t0 = time.perf_counter()
    table_name, human = human_keypoints(joint_names, joint_pos_w)
    refit_joints, betas = _betas_refit(robot, joint_names, params, cfg, shape)
    source = human if refit_joints is None else human_keypoints(joint_names, refit_joints)[1]
    if shape is None:
        shape = fit_shape(source, robot_rest_keypoints(robot, source.keys()), cfg.proportion_blend)
        if betas is not None:
            shape = replace(shape, betas_fit=asdict(betas))
    targets = keep_floor_clearance(source, apply_shape(source, shape))
    foot_z = np.stack([np.minimum(targets[f"{s}_ankle"][:, 2], targets[f"{s}_toe"][:, 2]) for s in ("left", "right")], 1)
    foot_xy = np.stack([targets[f"{s}_ankle"][:, :2] for s in ("left", "right")], 1)
    scene_r = None if scene is None else robot_scene(scene, shape.root_scale)
    if scene_r is not None:  # a foot on a stair tread is on its support, not 15 cm above the floor
        rel = keypoint_heights(targets, scene_r)
        contact = scene_contact_labels(rel, foot_xy, fps)
        targets = lift_feet_out_of_scene(targets, scene_r, keypoint_rest_height(rel, foot_xy, fps))
    else:
        contact = contact_labels(foot_z, foot_xy, fps)
    if cfg.sole_clearance:
        targets = keep_sole_clearance(robot, source, targets, contact)

    ik_cfg = IKConfig(iterations_per_frame=cfg.iterations_per_frame, posture_cost=cfg.posture_cost,
                      contact_lock=cfg.contact_lock, foot_frame=cfg.foot_frame, self_collision=cfg.self_collision)
    t_ik = time.perf_counter()
    q = solve_clip(robot, targets, contact, fps, ik_cfg)
    ik_s = time.perf_counter() - t_ik
    root_pos, root_quat, joints = robot.from_pin_q(q)
    root_quat = _continuous_quats(root_quat.copy())
    if cfg.smooth_sigma_frames > 0 and len(q) > 3:
        joints = gaussian_filter1d(joints, cfg.smooth_sigma_frames, axis=0, mode="nearest")
        root_pos = gaussian_filter1d(root_pos, cfg.smooth_sigma_frames, axis=0, mode="nearest")
        root_quat = _continuous_quats(gaussian_filter1d(root_quat, cfg.smooth_sigma_frames, axis=0, mode="nearest"))
    lo, hi = robot.joint_limits
    joints = np.clip(joints, lo, hi)  # smoothing never leaves the joint limits
    qpos = robot.qpos(root_pos, root_quat, joints)
    root_pos = root_pos.copy()
    floor = None if cfg.floor_z_m is None else cfg.floor_z_m * shape.root_scale
    support = np.where(contact, support_heights(foot_z, floor), 0.0)
    if scene_r is None:
        root_pos[:, 2] += ground_offsets(robot.foot_bottom_z(qpos), contact, support)
    else:
        root_pos[:, 2] += ground_offsets_scene(foot_clearance(robot, qpos, scene_r), contact)
    qpos = robot.qpos(root_pos, root_quat, joints)

    # heights above the floor, or above the scene's surface under each foot
    foot_low = robot.foot_bottom_z(qpos) if scene_r is None else foot_clearance(robot, qpos, scene_r)
    robot_kp = robot.keypoints(qpos, METRIC_KEYPOINTS)
    mean_m, max_m, worst = mpkpe_aligned_worst(robot_kp, np.stack([human[k] for k in METRIC_KEYPOINTS], 1))
    track_err = np.linalg.norm(robot_kp - np.stack([targets[k] for k in METRIC_KEYPOINTS], 1), axis=-1)
    ankles = robot.keypoints(qpos, ("left_ankle", "right_ankle"))[..., :2]
    stab_cfg = StabilityConfig(eps_m=cfg.stab_eps_m, max_unstable_run=cfg.stab_max_unstable_run)
    stab = assess(robot, qpos, stab_cfg) if scene_r is None else assess_on_scene(robot, qpos, scene_r, stab_cfg)
    robot_contact = foot_low < 0.02
    elapsed = time.perf_counter() - t0
    report = {
        "robot": robot.config.name, "n_frames": int(len(q)), "fps": float(fps), "human_skeleton": table_name,
        "shape_fit": asdict(shape),
        "metrics": {
            "mpkpe_aligned_mean_m": mean_m, "mpkpe_aligned_max_m": max_m, "mpkpe_aligned_max_frame": worst,
            "target_error_mean_m": float(track_err.mean()), "target_error_max_m": float(track_err.max()),
            "foot_skate_cm_s": foot_skate_cm_s(ankles, foot_low, fps), "penetration_cm": penetration_cm(foot_low),
            "joint_limit_violations": limit_violations(joints, lo, hi),
            "velocity_limit_violations": velocity_violations(joints, robot.velocity_limits, fps),
            "self_collision_frames": self_collision_frames(robot, qpos),
            "human_contact_fraction": float(contact.mean()),
        },
        "stability": stab.as_dict(),
        "timing": {"ik_frames_per_s": len(q) / max(ik_s, 1e-9), "total_frames_per_s": len(q) / max(elapsed, 1e-9)},
    }
    if scene_r is not None:  # flat clips keep their bytes: no ground key (read as 'flat')
        report["ground"] = "scene"
        report["scene"] = {"scene_id": scene.scene_id, "kind": scene.kind, "scale": float(shape.root_scale),
                           "seated_fraction": float(seated(robot, qpos, scene_r).mean())}
        report["metrics"]["float_cm"] = float_cm(foot_low, contact)
    motion = RobotMotion(fps, robot.config.joints, root_pos, root_quat, joints, robot_contact)
    return ClipResult(motion, report)
