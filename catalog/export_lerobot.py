"""The retargeted clips as a LeRobotDataset v3.0 tree, readable by `lerobot.datasets.LeRobotDataset`.

Layout (lerobot 0.4.4 `datasets/utils.py`, CODEBASE_VERSION "v3.0"):
  meta/info.json                               codebase_version, fps, features (with joint names), path templates
  meta/tasks.parquet                           index = task text, column task_index
  meta/episodes/chunk-000/file-000.parquet     one row per episode: length, tasks, data/video file and span,
                                               plus our provenance (clip_id, dataset, subset, sequence, source
                                               seconds, stability verdict, retarget/ingest shard)
  data/chunk-000/file-000.parquet              one row per frame: observation.state, action (G1 joint positions
                                               [rad], 29, G1_29DOF_JOINTS), observation.root_pos_w,
                                               observation.root_quat_wxyz, timestamp, frame_index,
                                               episode_index, index, task_index
  videos/observation.images.source/chunk-000/file-NNN.mp4   the clip's source video, one file per episode
One episode = one clip. `action` is the next frame's joint positions (the last frame repeats), the
target a tracking policy is asked to reach. The source video is re-timed to the motion rate (nearest
frame) because LeRobot decodes a frame at every data timestamp; the feature is present only when every
exported clip has a video (motion-only clips otherwise leave it out for all).

`--storage lance`: lerobot 0.4.4 (the newest release for Python 3.11) has no Lance storage, so it is
refused with that reason rather than writing a layout nothing can read.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from robomirror.errors import RoboMirrorError
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.paths import DataLayout
from robomirror.shards import find_sample, published_shards
from robomirror.tario import read_tar

CODEBASE_VERSION = "v3.0"
LEROBOT_PIN = "lerobot==0.4.4"
VIDEO_KEY = "observation.images.source"
STORAGES = ("parquet", "lance")


class ExportError(RoboMirrorError):
    """The export cannot be written as asked."""


@dataclass(frozen=True)
class Episode:
    clip_id: str
    joint_pos: np.ndarray  # (T, 29) [rad] G1_29DOF_JOINTS
    root_pos_w: np.ndarray  # (T, 3) [m]
    root_quat_wxyz: np.ndarray  # (T, 4)
    fps: float
    tasks: tuple[str, ...]
    video: bytes | None
    provenance: dict


def _episodes(layout: DataLayout, limit: int | None) -> list[Episode]:
    from retarget.interop import motion_for_robot
    from retarget.motion import RobotMotion

    out = []
    for manifest in sorted((layout.root / "shards" / "retarget").glob("*/manifest.parquet")):
        for shard in published_shards(manifest):
            members: dict[str, dict[str, bytes]] = {}
            for name, data in read_tar(shard):
                key, suffix = name.split(".", 1)
                members.setdefault(key, {})[suffix] = data
            for key in sorted(members):
                z = np.load(io.BytesIO(members[key]["robot.npz"]), allow_pickle=False)
                m = motion_for_robot(RobotMotion.from_beyondmimic({k: z[k] for k in z.files}), "g1_29dof")
                report = json.loads(members[key]["retarget.json"])
                ingest = find_sample(layout.root, "ingest", key) or {}
                meta = json.loads(ingest["meta.json"]) if "meta.json" in ingest else {}
                texts = tuple(dict.fromkeys(t["text"] for t in meta.get("texts", ()) if t.get("text")))
                prov = {"clip_id": key, "dataset": report.get("dataset", ""), "subset": report.get("subset", ""),
                        "sequence": report.get("sequence", ""), "view": report.get("view", ""),
                        "source_start_s": float(meta.get("start_s", meta.get("start_seconds", 0.0)) or 0.0),
                        "stability_passed": bool(report.get("stability", {}).get("passed", False)),
                        "retarget_shard": shard.name, "ingest_shard": str(report.get("ingest_shard", ""))}
                out.append(Episode(key, m.joint_pos, m.root_pos_w, m.root_quat_wxyz, float(m.fps),
                                   texts or (f"{prov['dataset']} motion",), ingest.get("video.mp4"), prov))
                if limit is not None and len(out) >= limit:
                    return out
    return out


def _retimed_video(mp4: bytes, n_frames: int, fps: float) -> tuple[bytes, tuple[int, int]]:
    """The clip video with one frame per motion frame (nearest source frame in time)."""
    from ingest.video import decode_mp4_bytes, encode_mp4

    frames, times, _ = decode_mp4_bytes(mp4)
    t = np.arange(n_frames) / fps
    idx = np.clip(np.searchsorted(times - times[0], t + 1e-6) - 1, 0, len(frames) - 1)
    return encode_mp4([frames[i] for i in idx], fps), frames.shape[1:3]


def _features(with_video: bool, fps: float, hw: tuple[int, int] | None) -> dict:
    names = list(G1_29DOF_JOINTS)
    f = {
        "observation.state": {"dtype": "float32", "shape": [29], "names": names},
        "action": {"dtype": "float32", "shape": [29], "names": names},
        "observation.root_pos_w": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
        "observation.root_quat_wxyz": {"dtype": "float32", "shape": [4], "names": ["w", "x", "y", "z"]},
    }
    if with_video:
        f[VIDEO_KEY] = {"dtype": "video", "shape": [hw[0], hw[1], 3], "names": ["height", "width", "channels"],
                        "info": {"video.height": hw[0], "video.width": hw[1], "video.codec": "h264",
                                 "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                 "video.channels": 3, "has_audio": False}}
    for k in ("timestamp",):
        f[k] = {"dtype": "float32", "shape": [1], "names": None}
    for k in ("frame_index", "episode_index", "index", "task_index"):
        f[k] = {"dtype": "int64", "shape": [1], "names": None}
    return f


def export_lerobot(layout: DataLayout, out: Path, storage: str = "parquet", limit: int | None = None) -> dict:
    """Write the retargeted clips under `out` (which must not exist); returns info.json's dict."""
    if storage == "lance":
        raise ExportError(f"--storage lance: {LEROBOT_PIN} (the newest LeRobot for Python 3.11; 0.5+ need 3.12) "
                          "has no Lance storage, so nothing could load it; use --storage parquet")
    if storage not in STORAGES:
        raise ExportError(f"unknown storage {storage!r}; expected one of {STORAGES}")
    if out.exists():
        raise ExportError(f"{out} exists; the export writes a new dataset folder (remove it or pick another)")
    eps = _episodes(layout, limit)
    if not eps:
        raise ExportError(f"no retargeted clips under {layout.root}/shards/retarget; run `make shards` first")
    fps_set = {e.fps for e in eps}
    if len(fps_set) != 1:
        raise ExportError(f"clips have different frame rates {sorted(fps_set)}; a LeRobot dataset has one fps")
    fps = fps_set.pop()
    with_video = all(e.video is not None for e in eps)
    tmp = out.with_name(out.name + ".partial")  # nothing half-written carries the final name
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        info = _write(tmp, eps, fps, with_video)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _write(root: Path, eps: list[Episode], fps: float, with_video: bool) -> dict:
    tasks: dict[str, int] = {}
    for e in eps:
        for t in e.tasks:
            tasks.setdefault(t, len(tasks))
    frames, episodes, hw, index = [], [], None, 0
    for ei, e in enumerate(eps):
        n = len(e.joint_pos)
        action = np.concatenate([e.joint_pos[1:], e.joint_pos[-1:]])
        task = tasks[e.tasks[0]]
        for k in range(n):
            frames.append({"observation.state": e.joint_pos[k].astype(np.float32).tolist(),
                           "action": action[k].astype(np.float32).tolist(),
                           "observation.root_pos_w": e.root_pos_w[k].astype(np.float32).tolist(),
                           "observation.root_quat_wxyz": e.root_quat_wxyz[k].astype(np.float32).tolist(),
                           "timestamp": np.float32(k / fps), "frame_index": k, "episode_index": ei,
                           "index": index + k, "task_index": task})
        row = {"episode_index": ei, "tasks": list(e.tasks), "length": n,
               "data/chunk_index": 0, "data/file_index": 0,
               "dataset_from_index": index, "dataset_to_index": index + n,
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0, **e.provenance}
        if with_video:
            mp4, hw = _retimed_video(e.video, n, fps)
            path = root / "videos" / VIDEO_KEY / "chunk-000" / f"file-{ei:03d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(mp4)
            row.update({f"videos/{VIDEO_KEY}/chunk_index": 0, f"videos/{VIDEO_KEY}/file_index": ei,
                        f"videos/{VIDEO_KEY}/from_timestamp": 0.0, f"videos/{VIDEO_KEY}/to_timestamp": n / fps})
        episodes.append(row)
        index += n
    features = _features(with_video, fps, hw)
    data_schema = pa.schema([
        pa.field(k, pa.list_(pa.float32(), v["shape"][0])) if v["dtype"] == "float32" and v["shape"][0] > 1
        else pa.field(k, pa.float32() if v["dtype"] == "float32" else pa.int64())
        for k, v in features.items() if v["dtype"] != "video"])
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(frames, schema=data_schema), root / "data" / "chunk-000" / "file-000.parquet")
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pd.DataFrame({"task_index": list(tasks.values())}, index=pd.Index(list(tasks), name="task")).to_parquet(
        root / "meta" / "tasks.parquet")
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": "unitree_g1", "total_episodes": len(eps),
            "total_frames": index, "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200, "fps": int(round(fps)), "splits": {"train": f"0:{len(eps)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": ("videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
                           if with_video else None),
            "features": features}
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    return info
