"""The LanceDB latent store: validated, idempotent upserts keyed on clip_id, one tag per build.

A batch is validated completely before anything is written (non-null unique keys, fixed vector
widths, finite values); a refused batch raises `StoreError` listing every problem and the table
version does not move. Writes go through one driver (`ray.data.write_lance` is broken with
pylance 14), as `merge_insert` upserts: re-running a build adds no rows.
"""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa

from latents.text import TEXT_DIM
from robomirror import FORMAT_VERSION
from robomirror.errors import RoboMirrorError

MOTION_DIM = 256
CLIPS = "clips"
ANN_MIN_ROWS = 65_536  # below this, exact search beats building and probing an index
SCALAR_INDEXED = ("dataset", "view", "stable")
MOTION_TOKENS = "motion_tokens"


class StoreError(RoboMirrorError):
    """A batch was refused; nothing was written."""


def _vec(dim: int, t=pa.float32()) -> pa.DataType:
    return pa.list_(t, dim)


CLIPS_SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False), ("dataset", pa.string()), ("subset", pa.string()),
    ("sequence", pa.string()), ("view", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
    ("fps", pa.float32()), ("n_frames", pa.int32()), ("text", pa.string()), ("texts_json", pa.string()),
    ("source_sha256", pa.string()), ("ingest_shard", pa.string()), ("retarget_shard", pa.string()),
    ("robot", pa.string()), ("body_model", pa.string()), ("mpkpe_aligned_mean_m", pa.float64()),
    ("foot_skate_cm_s", pa.float64()), ("penetration_cm", pa.float64()), ("stable", pa.bool_()),
    ("stability_reason", pa.string()), ("vae_id", pa.string()), ("text_model", pa.string()),
    pa.field("motion_latent", _vec(MOTION_DIM), nullable=False),
    pa.field("text_emb", _vec(TEXT_DIM), nullable=False), ("format_version", pa.int32()),
])
TOKENS_SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False), ("vae_id", pa.string()), ("n_tokens", pa.int32()),
    pa.field("tokens", pa.list_(_vec(MOTION_DIM, pa.float16())), nullable=False),
])
SCHEMAS = {CLIPS: CLIPS_SCHEMA, MOTION_TOKENS: TOKENS_SCHEMA}
VECTOR_WIDTHS = {CLIPS: {"motion_latent": MOTION_DIM, "text_emb": TEXT_DIM}, MOTION_TOKENS: {}}


def validate(table: str, rows: list[dict]) -> None:
    """Every problem in the batch at once, or nothing."""
    problems = []
    keys = [r.get("clip_id") for r in rows]
    if any(not k for k in keys):
        problems.append(f"{sum(not k for k in keys)} rows have no clip_id")
    dupes = sorted({k for k in keys if k and keys.count(k) > 1})
    if dupes:
        problems.append(f"duplicate clip_id in the batch: {dupes[:5]}")
    for i, r in enumerate(rows):
        for col, dim in VECTOR_WIDTHS[table].items():
            v = np.asarray(r.get(col) if r.get(col) is not None else [], dtype=np.float64)
            if v.shape != (dim,):
                problems.append(f"row {i} ({r.get('clip_id')}): {col} has shape {v.shape}, expected ({dim},)")
            elif not np.all(np.isfinite(v)):
                problems.append(f"row {i} ({r.get('clip_id')}): {col} has NaN or inf")
        if table == MOTION_TOKENS:
            tok = np.asarray(r.get("tokens"), dtype=np.float64)
            if tok.ndim != 2 or tok.shape[1] != MOTION_DIM:
                problems.append(f"row {i} ({r.get('clip_id')}): tokens have shape {tok.shape}, expected (n, {MOTION_DIM})")
            elif not np.all(np.isfinite(tok)):
                problems.append(f"row {i} ({r.get('clip_id')}): tokens have NaN or inf")
    if problems:
        raise StoreError(f"refused {len(rows)} rows for table {table!r}; nothing written: " + "; ".join(problems))


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(str(self.path))

    def table(self, name: str):
        try:
            return self.db.open_table(name)
        except (ValueError, FileNotFoundError, RuntimeError):
            return self.db.create_table(name, schema=SCHEMAS[name])

    def version(self, name: str) -> int:
        return self.table(name).version

    def upsert(self, name: str, rows: list[dict], batch: int = 512) -> int:
        """Validated upsert on clip_id, in batches; returns how many rows were inserted (not updated)."""
        validate(name, rows)
        if name == CLIPS:
            for r in rows:
                r.setdefault("format_version", FORMAT_VERSION)
        t = self.table(name)
        inserted = 0
        for i in range(0, len(rows), batch):
            data = pa.Table.from_pylist(rows[i:i + batch], schema=SCHEMAS[name])
            res = t.merge_insert("clip_id").when_matched_update_all().when_not_matched_insert_all().execute(data)
            inserted += res.num_inserted_rows
        return inserted

    def tag(self, name: str, tag: str) -> None:
        t = self.table(name)
        if tag not in t.tags.list():
            t.tags.create(tag, t.version)

    def count(self, name: str) -> int:
        return self.table(name).count_rows()

    def ensure_indexes(self, ann_min_rows: int = ANN_MIN_ROWS) -> list[str]:
        """Scalar indexes on the filter columns always; ANN (IVF_PQ, cosine) on the vector columns once
        the table is large enough (below that, exact search is fast and exact). Returns what was built."""
        t = self.table(CLIPS)
        built = []
        for col in SCALAR_INDEXED:
            t.create_scalar_index(col, index_type="BITMAP", replace=True)
            built.append(f"bitmap:{col}")
        n = t.count_rows()
        if n >= ann_min_rows:
            for col, dim in VECTOR_WIDTHS[CLIPS].items():
                t.create_index(metric="cosine", index_type="IVF_PQ", vector_column_name=col,
                               num_partitions=max(16, int(np.sqrt(n))), num_sub_vectors=dim // 8, replace=True)
                built.append(f"ivf_pq:{col}")
        return built

    def compact(self) -> dict[str, tuple[int, int]]:
        """Optimise every table and drop versions older than now; (versions before, after) per table."""
        from datetime import timedelta

        out = {}
        for name in SCHEMAS:
            t = self.table(name)
            before = len(t.list_versions())
            t.optimize(cleanup_older_than=timedelta(seconds=0), delete_unverified=True)
            out[name] = (before, len(t.list_versions()))
        return out
