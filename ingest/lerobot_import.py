"""A LeRobotDataset v3.0 of G1 joint trajectories as ingest sources (robot motions, ingest/g1_csv.py's path).

Layout (lerobot 0.4.4 `datasets/utils.py`, the one `catalog export --format lerobot` writes):
  meta/info.json                            codebase_version "v3.0", fps, features (names per feature), data_path
  meta/episodes/chunk-*/file-*.parquet      one row per episode: episode_index, tasks, data/chunk_index,
                                            data/file_index (which data file holds its frames)
  data/chunk-*/file-*.parquet               one row per frame: episode_index, frame_index, the features
One episode = one sequence (`<dataset folder>/episode_<k>`); its tasks become texts.

**Joints by name.** `observation.state`'s `names` (a list, or LeRobot v2's `{"motors": [...]}`) are matched
to `G1_29DOF_JOINTS` by name (`left_knee_joint` or `left_knee`); every contract joint must be there, in any
order. Names beyond the contract (hands, grippers) are dropped and listed in the meta. A dataset whose
names miss a G1 joint, or that has no names, is refused as `bad_columns` naming what is missing; so is one
without the floating base a tracking reference needs (`observation.root_pos_w` [m] and
`observation.root_quat_wxyz`, as the export writes them). Values are [rad] and are checked by `retarget
import`'s rules (joint limits + 0.5 rad), which is what catches a dataset in degrees.

Other codebase versions (v2.x: `data/chunk-*/episode_*.parquet` + `meta/episodes.jsonl`) are refused with
that reason: convert them with lerobot's own `convert_dataset_v21_to_v30` first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.g1_csv import G1Trajectory, check_not_gated, robot_sequence
from ingest.sequence import HumanSequence, SourceRef, TextSpan
from robomirror.errors import SourceError
from robomirror.g1_contract import G1_29DOF_JOINTS

CODEBASE_VERSION = "v3.0"
STATE_KEY = "observation.state"
ROOT_POS_KEY = "observation.root_pos_w"
ROOT_QUAT_KEY = "observation.root_quat_wxyz"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def read_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    check_not_gated(str(path))
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(Reason.BAD_CSV, str(path), f"not JSON: {e}") from e
    version = str(info.get("codebase_version", "?"))
    if version != CODEBASE_VERSION:
        raise SourceError(Reason.BAD_COLUMNS, str(path),
                          f"codebase_version {version!r}: this reader reads LeRobotDataset {CODEBASE_VERSION}; "
                          "convert older datasets with lerobot's convert_dataset_v21_to_v30 first")
    return info


def joint_columns(info: dict, path: str) -> tuple[list[int], list[str]]:
    """Index into observation.state of each G1_29DOF_JOINTS joint, and the names left unused."""
    feat = info.get("features", {}).get(STATE_KEY)
    if feat is None:
        raise SourceError(Reason.BAD_COLUMNS, path, f"no {STATE_KEY!r} feature; found {sorted(info.get('features', {}))}")
    names = feat.get("names")
    if isinstance(names, dict) and len(names) == 1:  # LeRobot v2 style {"motors": [...]}
        names = next(iter(names.values()))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SourceError(Reason.BAD_COLUMNS, path,
                          f"{STATE_KEY} has no joint names (found {names!r}): a G1 joint is matched by name only")
    where = {n: i for i, n in enumerate(names)}
    where.update({n + "_joint": i for i, n in enumerate(names) if n + "_joint" not in where})
    missing = [j for j in G1_29DOF_JOINTS if j not in where]
    if missing:
        raise SourceError(Reason.BAD_COLUMNS, path,
                          f"{STATE_KEY} names do not cover the G1 29-DoF contract; Missing: {missing}; "
                          f"found: {names}")
    index = [where[j] for j in G1_29DOF_JOINTS]
    return index, [n for i, n in enumerate(names) if i not in set(index)]


def _episode_rows(root: Path) -> list[tuple[dict, str]]:
    import pyarrow.parquet as pq

    out = []
    for p in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        out += [(r, str(p)) for r in pq.read_table(p).to_pylist()]
    return sorted(out, key=lambda rp: rp[0]["episode_index"])


def discover_lerobot(root: Path) -> list[SourceRef]:
    """Every episode of the dataset at `root` (the folder holding meta/info.json)."""
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        return [SourceRef.unusable("lerobot", root, root, Reason.NOT_A_SOURCE.value,
                                   "no meta/info.json: not a LeRobotDataset root")]
    try:
        info = read_info(root)
        joint_columns(info, str(info_path))
        for key in (ROOT_POS_KEY, ROOT_QUAT_KEY):
            if key not in info.get("features", {}):
                raise SourceError(Reason.BAD_COLUMNS, str(info_path),
                                  f"no {key!r} feature: a robot motion needs its floating base (root position [m] "
                                  "and quaternion wxyz) beside the joints")
    except SourceError as e:  # one ledger row for the dataset, naming the file and the reason
        return [SourceRef.unusable("lerobot", e.path, root, e.reason, e.detail)]
    template = info.get("data_path", DATA_PATH)
    refs = []
    for row, ep_file in _episode_rows(root):
        data = root / template.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
        refs.append(SourceRef("lerobot", root.name, f"episode_{row['episode_index']:06d}", str(root),
                              (("data", str(data)), ("info", str(info_path)), ("episodes", ep_file)),
                              f"lerobot_{CODEBASE_VERSION}"))
    return refs


def read_episode(ref: SourceRef) -> tuple[G1Trajectory, list[TextSpan], dict]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = dict(ref.files)
    info = read_info(Path(ref.root))
    index, unused = joint_columns(info, files["info"])
    ep = int(ref.sequence.rsplit("_", 1)[1])
    check_not_gated(files["data"])
    table = pq.read_table(files["data"], columns=["episode_index", "frame_index", STATE_KEY, ROOT_POS_KEY, ROOT_QUAT_KEY])
    table = table.filter(pc.equal(table["episode_index"], ep)).sort_by("frame_index")
    if table.num_rows == 0:
        raise SourceError(Reason.EMPTY, files["data"], f"no frames of episode {ep}")
    frames = table["frame_index"].to_numpy()
    if not np.array_equal(frames, np.arange(len(frames))):
        raise SourceError(Reason.NON_MONOTONIC_TIME, files["data"],
                          f"episode {ep}: frame_index is not 0..{len(frames) - 1} (gaps or repeats)")
    state = np.asarray(table[STATE_KEY].to_pylist(), dtype=np.float64)
    root_pos = np.asarray(table[ROOT_POS_KEY].to_pylist(), dtype=np.float64)
    root_quat = np.asarray(table[ROOT_QUAT_KEY].to_pylist(), dtype=np.float64)
    ep_row = next(r for r, _ in _episode_rows(Path(ref.root)) if r["episode_index"] == ep)
    texts = [TextSpan("task", t) for t in (ep_row.get("tasks") or ()) if t]
    notes = {"lerobot_fps": info["fps"], "lerobot_unused_state_names": unused,
             "lerobot_clip_id": ep_row.get("clip_id")}
    return G1Trajectory(float(info["fps"]), root_pos, root_quat, state[:, index]), texts, notes


def read_lerobot(ref: SourceRef, cfg: IngestConfig) -> HumanSequence:
    traj, texts, notes = read_episode(ref)
    return robot_sequence(ref, traj, texts, cfg, dict(ref.files)["data"],
                          {"source_layout": f"lerobot_{CODEBASE_VERSION}", **{k: v for k, v in notes.items() if v is not None}})
