"""The failure ledger: one row per source item that could not be ingested, with a typed reason.

Failing items never stop a run (unless `on_error="raise"`); the ledger is published atomically
at the end of every run and holds that run's failures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.manifest import stored_name
from robomirror import FORMAT_VERSION
from robomirror.atomic import publish_with
from robomirror.paths import printable


class Reason(str, Enum):
    MISSING_FILE = "missing_file"
    BAD_SHAPE = "bad_shape"  # wrong array width / rank
    BAD_DTYPE = "bad_dtype"  # not a float/int array, or an object array
    NON_FINITE = "non_finite"  # NaN or inf
    EMPTY = "empty"  # zero frames
    TOO_SHORT = "too_short"  # fewer frames than min_frames
    NON_MONOTONIC_TIME = "non_monotonic_time"
    VIDEO_UNREADABLE = "video_unreadable"
    VIDEO_TRUNCATED = "video_truncated"  # video ends before the motion it must cover
    BAD_CSV = "bad_csv"
    MISSING_TEXT = "missing_text"
    BAD_BODY = "bad_body"  # body model could not evaluate the parameters
    INCONSISTENT_ORIENTATION = "inconsistent_orientation"  # the body turns over between two frames (a stitch)
    NOT_A_SOURCE = "not_a_source"  # a file where a folder is expected, a FIFO/device, an unparsable name
    WORKER_CRASHED = "worker_crashed"
    INTERNAL = "internal"  # a bug: an exception nobody anticipated
    # the up axis's floor and flights accept no common axis (ingest/up_axis.py)
    UP_AXIS_FLOOR_VS_FLIGHT = "up_axis_floor_vs_flight"
    HEADER_MISMATCH = "header_mismatch"  # a file's own header (e.g. xdata.npz frameRate) disagrees with its data

    # issue 23: readers of G1 trajectory tables (LAFAN1/BONES-SEED CSV, LeRobot parquet)
    BAD_COLUMNS = "bad_columns"  # a table's columns are not its documented layout (count, names or order)
    NOT_DOWNLOADED = "not_downloaded"  # a Git LFS pointer or HTML access page where a licence-gated file belongs
    # issue 22: a scene (mesh, boxes, height field) a sequence carries (ingest/scene.py)
    BAD_SCENE = "bad_scene"  # not a readable mesh / box set / height field
    SCENE_UNITS = "scene_units"  # the scene is not in metres like its motion
    SCENE_UP_AXIS = "scene_up_axis"  # the scene is not z-up in the motion's frame (feet sink into it)


@dataclass(frozen=True)
class Failure:
    dataset: str
    sequence: str
    path: str
    stage: str
    reason: str
    detail: str


LEDGER_SCHEMA = pa.schema([
    ("dataset", pa.string()), ("sequence", pa.string()), ("path", pa.string()),
    ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ("format_version", pa.int32()),
])


def write_ledger(path: Path, failures: list[Failure]) -> None:
    # names in the manifest's reversible form (ingest.manifest.stored_name), free text made printable
    rows = sorted(({k: (stored_name(v) if k in ("sequence", "path") else printable(v)) if isinstance(v, str) else v
                    for k, v in asdict(f).items()} for f in failures), key=lambda r: (r["dataset"], r["sequence"], r["path"]))
    for r in rows:
        r["format_version"] = FORMAT_VERSION
    table = pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA)
    publish_with(path, lambda f: pq.write_table(table, f))


def read_ledger(path: Path) -> list[Failure]:
    if not path.exists():
        return []
    rows = pq.read_table(path).to_pylist()
    return [Failure(**{k: r[k] for k in Failure.__dataclass_fields__}) for r in rows]
