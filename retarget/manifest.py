"""The retarget manifest: one row per clip with every metric and the stability verdict."""

from __future__ import annotations

import pyarrow as pa

MANIFEST_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("dataset", pa.string()), ("subset", pa.string()),
    ("sequence", pa.string()), ("view", pa.string()), ("robot", pa.string()), ("n_frames", pa.int32()),
    ("fps", pa.float32()), ("human_skeleton", pa.string()), ("body_model", pa.string()),
    ("root_scale", pa.float64()),
    ("mpkpe_aligned_mean_m", pa.float64()), ("mpkpe_aligned_max_m", pa.float64()),
    ("mpkpe_aligned_max_frame", pa.int32()),  # clip frame of the max keypoint error
    ("target_error_mean_m", pa.float64()), ("foot_skate_cm_s", pa.float64()), ("penetration_cm", pa.float64()),
    ("joint_limit_violations", pa.int32()), ("velocity_limit_violations", pa.int32()),
    ("self_collision_frames", pa.int32()), ("stable", pa.bool_()), ("stability_reason", pa.string()),
    ("dd_mean_m", pa.float64()), ("dd_max_m", pa.float64()), ("longest_unstable_run", pa.int32()),
    ("unstable_fraction", pa.float64()), ("ingest_shard", pa.string()), ("format_version", pa.int32()),
    # issue 22: what contacts, penetration, grounding and stability were measured against
    ("ground", pa.string()),  # 'flat' (z = 0) | 'scene'
    ("scene_id", pa.string()), ("scene_kind", pa.string()),  # null on flat clips
    ("float_cm", pa.float64()),  # scene clips: mean sole height above the surface of feet in contact; null on flat
])


def manifest_row(shard_name: str, sample: dict) -> dict:
    r = sample["meta"]
    m, st = r["metrics"], r["stability"]
    return {
        "clip_id": sample["key"], "shard": shard_name, "dataset": r["dataset"], "subset": r["subset"],
        "sequence": r["sequence"], "view": r["view"], "robot": r["robot"], "n_frames": r["n_frames"],
        "fps": r["fps"], "human_skeleton": r["human_skeleton"], "body_model": r["body_model"],
        "root_scale": r["shape_fit"]["root_scale"],
        "mpkpe_aligned_mean_m": m["mpkpe_aligned_mean_m"], "mpkpe_aligned_max_m": m["mpkpe_aligned_max_m"],
        "mpkpe_aligned_max_frame": m["mpkpe_aligned_max_frame"],
        "target_error_mean_m": m["target_error_mean_m"], "foot_skate_cm_s": m["foot_skate_cm_s"],
        "penetration_cm": m["penetration_cm"], "joint_limit_violations": m["joint_limit_violations"],
        "velocity_limit_violations": m["velocity_limit_violations"],
        "self_collision_frames": m["self_collision_frames"], "stable": st["passed"], "stability_reason": st["reason"],
        "dd_mean_m": st["dd_mean_m"], "dd_max_m": st["dd_max_m"], "longest_unstable_run": st["longest_unstable_run"],
        "unstable_fraction": st["unstable_fraction"], "ingest_shard": r["ingest_shard"],
        "format_version": r["format_version"],
        "ground": r.get("ground", "flat"), "scene_id": (r.get("scene") or {}).get("scene_id"),
        "scene_kind": (r.get("scene") or {}).get("kind"), "float_cm": m.get("float_cm"),
    }
