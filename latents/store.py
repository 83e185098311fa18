"""The LanceDB latent store: validated, idempotent upserts keyed on clip_id, one tag per build.

A batch is validated completely before anything is written (non-null unique keys, fixed vector
widths, finite values); a refused batch raises `StoreError` listing every problem and the table
version does not move. Writes go through one driver (`ray.data.write_lance` is broken with
pylance 14), as `merge_insert` upserts: re-running a build adds no rows.

Every write method (`upsert`, `delete_clips`, `tag`, `ensure_indexes`, `compact`, and creating a
table) holds the data root's writer lock (`robomirror.writer_lock`) for its duration, so a library
caller is refused exactly like a second CLI, naming the holder; a CLI that already holds the lock
re-enters it (the lock is re-entrant within a process). The data root of a store at `<root>/store`
(`DataLayout.store_dir`) is `<root>`: the store's parent folder, unless `lock_root` says otherwise.
Reads never lock.
"""

from __future__ import annotations

import functools
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import Bitmap, IvfPq

from latents.text import TEXT_DIM
from robomirror import FORMAT_VERSION
from robomirror.errors import RoboMirrorError
from robomirror.writer_lock import writer_lock

MOTION_DIM = 256
CLIPS = "clips"
MOTION_TOKENS = "motion_tokens"
VIDEO_TOKENS = "video_tokens"
TABLES = (CLIPS, MOTION_TOKENS, VIDEO_TOKENS)
ANN_MIN_ROWS = 65_536  # below this, exact search beats building and probing an index
SCALAR_INDEXED = ("dataset", "view", "stable")


class StoreError(RoboMirrorError):
    """A batch was refused, or the store cannot be opened as asked; nothing was written."""


# issue 22: what the clip was performed on, additive (a store built before them gains them, null, on its
# next write: `Store.table`): 'flat' | 'scene', the scene's content id (<root>/scenes/<id>.npz), its kind
# (ingest.scene.KINDS: stairs, bench, slope, boxes, terrain) and its bounds as ingested (the human's
# metres, the motion's frame) [x_min, y_min, z_min, x_max, y_max, z_max]; null on flat clips
SCENE_FIELDS = (pa.field("ground", pa.string()), pa.field("scene_id", pa.string()), pa.field("scene_kind", pa.string()),
                pa.field("scene_bounds_m", pa.list_(pa.float64())))


def _vec(dim: int, t=pa.float32()) -> pa.DataType:
    return pa.list_(t, dim)


def schemas(video_dim: int) -> dict[str, pa.Schema]:
    """Every table's schema; `video_dim` is the VLM's hidden size (2560 for Qwen3-VL-4B)."""
    clips = pa.schema([
        pa.field("clip_id", pa.string(), nullable=False), ("dataset", pa.string()), ("subset", pa.string()),
        ("sequence", pa.string()), ("view", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
        ("fps", pa.float32()), ("n_frames", pa.int32()), ("text", pa.string()), ("texts_json", pa.string()),
        ("source_sha256", pa.string()), ("ingest_shard", pa.string()), ("retarget_shard", pa.string()),
        ("robot", pa.string()), ("body_model", pa.string()), ("mpkpe_aligned_mean_m", pa.float64()),
        ("foot_skate_cm_s", pa.float64()), ("penetration_cm", pa.float64()), ("stable", pa.bool_()),
        ("stability_reason", pa.string()), ("vae_id", pa.string()), ("vlm_id", pa.string()),
        ("video_frames", pa.int32()), ("text_model", pa.string()),
        pa.field("motion_latent", _vec(MOTION_DIM), nullable=False),
        pa.field("video_latent", _vec(video_dim)),  # null when a clip has no video
        pa.field("text_emb", _vec(TEXT_DIM), nullable=False), ("format_version", pa.int32()),
        *SCENE_FIELDS,
    ])

    def tokens(model_col: str, dim: int) -> pa.Schema:
        return pa.schema([pa.field("clip_id", pa.string(), nullable=False), (model_col, pa.string()),
                          ("n_tokens", pa.int32()), pa.field("tokens", pa.list_(_vec(dim, pa.float16())), nullable=False)])

    return {CLIPS: clips, MOTION_TOKENS: tokens("vae_id", MOTION_DIM), VIDEO_TOKENS: tokens("vlm_id", video_dim)}


def vector_widths(video_dim: int) -> dict[str, dict[str, int]]:
    """Per table, the fixed-width vector columns (`video_latent` may be null) and the token width."""
    return {CLIPS: {"motion_latent": MOTION_DIM, "text_emb": TEXT_DIM, "video_latent": video_dim},
            MOTION_TOKENS: {"tokens": MOTION_DIM}, VIDEO_TOKENS: {"tokens": video_dim}}


NULLABLE_VECTORS = {"video_latent"}


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors: the largest divisor of `dim` that keeps >= 8 dimensions per sub-vector."""
    return next(d for d in range(max(dim // 8, 1), 0, -1) if dim % d == 0)


def validate(table: str, rows: list[dict], video_dim: int) -> None:
    """Every problem in the batch at once, or nothing."""
    problems = []
    keys = [r.get("clip_id") for r in rows]
    if any(not k for k in keys):
        problems.append(f"{sum(not k for k in keys)} rows have no clip_id")
    dupes = sorted({k for k in keys if k and keys.count(k) > 1})
    if dupes:
        problems.append(f"duplicate clip_id in the batch: {dupes[:5]}")
    for i, r in enumerate(rows):
        for col, dim in vector_widths(video_dim)[table].items():
            if col in NULLABLE_VECTORS and r.get(col) is None:
                continue
            v = np.asarray(r.get(col) if r.get(col) is not None else [], dtype=np.float64)
            want = (dim,) if col != "tokens" else ("n", dim)
            if v.ndim != len(want) or v.shape[-1] != dim or (col == "tokens" and v.shape[0] == 0):
                problems.append(f"row {i} ({r.get('clip_id')}): {col} has shape {v.shape}, expected {want}")
            elif not np.all(np.isfinite(v)):
                problems.append(f"row {i} ({r.get('clip_id')}): {col} has NaN or inf")
    if problems:
        raise StoreError(f"refused {len(rows)} rows for table {table!r}; nothing written: " + "; ".join(problems))


def _writes(method):
    """A Store method that writes: it holds the data root's writer lock while it runs."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with writer_lock(self.lock_root, f"latents.store.Store.{method.__name__} ({self.path})"):
            return method(self, *args, **kwargs)
    return run


class Store:
    """The tables under one directory. `video_dim` is needed to create them; an existing store's
    width is read back, and a different one is refused (one store holds one VLM's latents).
    `lock_root` is the data root whose writer lock guards the writes (default: the store's parent)."""

    def __init__(self, path: Path, video_dim: int | None = None, lock_root: Path | None = None) -> None:
        self.path = Path(path)
        self.lock_root = Path(lock_root) if lock_root is not None else self.path.parent
        self.path.mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(str(self.path))
        existing = self._existing_video_dim()
        if video_dim and existing and video_dim != existing:
            raise StoreError(f"the store at {self.path} holds video latents of width {existing}, but this VLM makes "
                             f"{video_dim}: one store holds one VLM's latents; build into another --data-root")
        self.video_dim = video_dim or existing

    def _open(self, name: str):
        try:
            return self.db.open_table(name)
        except (ValueError, FileNotFoundError, RuntimeError):
            return None

    def _existing_video_dim(self) -> int | None:
        t = self._open(CLIPS)
        if t is None:
            return None
        if "video_latent" not in t.schema.names:
            raise StoreError(f"the store at {self.path} was written by an older build (no video_latent column); "
                             "delete it (`make clean-store`) or build into another --data-root")
        return t.schema.field("video_latent").type.list_size

    def table(self, name: str):
        t = self._open(name)
        if t is not None:
            return t
        if not self.video_dim:
            raise StoreError(f"no table {name!r} in {self.path}; run `make latents` first")
        return self._create(name)

    def _evolve(self, name: str, t):
        """A clips table written before the additive scene columns gains them (null) before a write
        (the caller holds the writer lock; reads see an old table as it is and never write)."""
        missing = [f for f in SCENE_FIELDS if name == CLIPS and f.name not in t.schema.names]
        if missing:
            t.add_columns(pa.schema(missing))
        return t

    @_writes
    def _create(self, name: str):
        t = self._open(name)  # another writer may have created it before we held the lock
        return t if t is not None else self.db.create_table(name, schema=schemas(self.video_dim)[name])

    def version(self, name: str) -> int:
        return self.table(name).version

    @_writes
    def upsert(self, name: str, rows: list[dict], batch: int = 512) -> int:
        """Validated upsert on clip_id, in batches; returns how many rows were inserted (not updated)."""
        if not self.video_dim:
            raise StoreError("creating the store needs the VLM's hidden size: Store(path, video_dim=...)")
        validate(name, rows, self.video_dim)
        if name == CLIPS:
            for r in rows:
                r.setdefault("format_version", FORMAT_VERSION)
        t = self._evolve(name, self.table(name))
        inserted = 0
        for i in range(0, len(rows), batch):
            data = pa.Table.from_pylist(rows[i:i + batch], schema=schemas(self.video_dim)[name])
            # the batch is validated above; lancedb counts a null vector (a clip without video) as a
            # wrong-width one, so nulls are passed through as nulls
            res = (t.merge_insert("clip_id").when_matched_update_all().when_not_matched_insert_all()
                   .execute(data, on_bad_vectors="null"))
            inserted += res.num_inserted_rows
        return inserted

    def model_ids(self) -> dict[str, tuple[str | None, str | None]]:
        """clip_id -> (vae_id, vlm_id) of every clip row (empty when the store has none)."""
        if not (self.path / f"{CLIPS}.lance").exists():
            return {}
        t = self.table(CLIPS).to_arrow().select(["clip_id", "vae_id", "vlm_id"]).to_pylist()
        return {r["clip_id"]: (r["vae_id"], r["vlm_id"]) for r in t}

    @_writes
    def delete_clips(self, clip_ids: list[str]) -> None:
        """Remove these clips from every table (tokens first is not needed: a clip row is removed too)."""
        if not clip_ids:
            return
        quoted = ", ".join("'" + c.replace("'", "''") + "'" for c in clip_ids)
        for name in (CLIPS, MOTION_TOKENS, VIDEO_TOKENS):
            if (self.path / f"{name}.lance").exists():
                self.table(name).delete(f"clip_id IN ({quoted})")

    def duplicate_clip_ids(self) -> list[str]:
        """Clip ids with more than one row in any table (left by builds that raced before the writer lock)."""
        from collections import Counter

        dupes: set[str] = set()
        for name in TABLES:
            if (self.path / f"{name}.lance").exists():
                counts = Counter(self.table(name).to_arrow().column("clip_id").to_pylist())
                dupes |= {c for c, n in counts.items() if n > 1}
        return sorted(dupes)

    @_writes
    def tag(self, name: str, tag: str) -> None:
        t = self.table(name)
        if tag not in t.tags.list():
            t.tags.create(tag, t.version)

    def count(self, name: str) -> int:
        return self.table(name).count_rows()

    @_writes
    def ensure_indexes(self, ann_min_rows: int = ANN_MIN_ROWS) -> list[str]:
        """Scalar indexes on the filter columns always; ANN (IVF_PQ, cosine) on the vector columns once
        the table is large enough (below that, exact search is fast and exact). Returns what was built."""
        t = self.table(CLIPS)
        built = []
        for col in SCALAR_INDEXED:
            t.create_index(col, replace=True, config=Bitmap())
            built.append(f"bitmap:{col}")
        n = t.count_rows()
        if n >= ann_min_rows:
            for col, dim in vector_widths(self.video_dim)[CLIPS].items():
                t.create_index(col, replace=True, config=IvfPq(  # with config, the first argument is the column
                    distance_type="cosine", num_partitions=max(16, int(np.sqrt(n))), num_sub_vectors=_sub_vectors(dim)))
                built.append(f"ivf_pq:{col}")
        return built

    @_writes
    def compact(self) -> dict[str, tuple[int, int]]:
        """Optimise every table and drop versions older than now; (versions before, after) per table."""
        from datetime import timedelta

        out = {}
        for name in TABLES:
            t = self._open(name)
            if t is None:
                continue
            before = len(t.list_versions())
            t.optimize(cleanup_older_than=timedelta(seconds=0), delete_unverified=True)
            out[name] = (before, len(t.list_versions()))
        return out
