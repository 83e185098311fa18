"""Read-only SQL over the data root with DuckDB.

Two locks keep it read-only: only SELECT statements are accepted (COPY, ATTACH, INSTALL, SET,
CREATE, ... are refused before anything runs), and the connection is in-memory with external
access limited to the data root and the configuration locked.

Results saved with `--out` are written by Python, never by DuckDB, to a path outside the data root
(checked before the query runs, symlinks and `..` resolved): no output mode can replace a manifest,
shard or ledger. An existing file is refused unless `force`; either way the file is published
atomically (temp name, fsync, rename), and without `force` it is linked into place only if the name
is still free, so a file that appears meanwhile is not clobbered.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import duckdb

from robomirror.atomic import publish_with
from robomirror.errors import ReadOnlyError
from robomirror.paths import DataLayout

ALLOWED = {duckdb.StatementType.SELECT}
_SPILL_DIR: str | None = None  # one private, empty spill folder per process (see connect)


def sql_literal(text: str) -> str:
    """A string as a SQL literal: paths are quoted, never pasted (a root may contain ')."""
    return "'" + str(text).replace("'", "''") + "'"


def _spill_dir() -> str:
    global _SPILL_DIR
    if _SPILL_DIR is None:
        import tempfile

        _SPILL_DIR = tempfile.mkdtemp(prefix="robomirror-duckdb-")
    return _SPILL_DIR


def _views(layout: DataLayout) -> dict[str, str]:
    """view name -> SQL of the files that exist now."""
    views = {}
    for view, stage in (("clips", "ingest"), ("retarget", "retarget")):
        manifests = sorted(layout.root.glob(f"shards/{stage}/*/manifest.parquet"))
        if manifests:
            files = ", ".join(sql_literal(p) for p in manifests)
            views[view] = f"SELECT * FROM read_parquet([{files}], union_by_name = true)"
    timing = layout.root / "runs" / "retarget_timing.parquet"
    if timing.is_file():
        views["retarget_timing"] = f"SELECT * FROM read_parquet({sql_literal(timing)})"
    ledgers = sorted((layout.root / "ledger").glob("*.parquet")) if (layout.root / "ledger").is_dir() else []
    if ledgers:
        files = ", ".join(sql_literal(p) for p in ledgers)
        views["failures"] = f"SELECT * FROM read_parquet([{files}], union_by_name = true, filename = true)"
    return views


def _lance_tables(layout: DataLayout) -> dict[str, object]:
    """The store's Lance tables as Arrow datasets (DuckDB's Arrow path works with any DuckDB)."""
    out = {}
    store = layout.store_dir
    if store.is_dir():
        import lance

        # token tables (motion_tokens, video_tokens) hold float16, which DuckDB cannot scan from
        # Arrow; they are for training, not SQL. Other tables with a float16 column (v2m: the DiT's
        # tokens) are exposed without it.
        for path in sorted(store.glob("*.lance")):
            if path.stem.endswith("_tokens"):
                continue
            ds = lance.dataset(str(path))
            keep = [f.name for f in ds.schema if "halffloat" not in str(f.type)]
            out[f"store_{path.stem}"] = ds if len(keep) == len(ds.schema) else ds.to_table(columns=keep)
            if path.stem == "clips":
                out["store_clips"] = _with_scene_columns(out["store_clips"])
    return out


def _with_scene_columns(ds):
    """A store built before issue 22's additive scene columns reads with them null, so
    `WHERE scene_kind = 'stairs'` works over any store (its next `make latents` adds them for real)."""
    import pyarrow as pa

    from latents.store import SCENE_FIELDS

    missing = [f for f in SCENE_FIELDS if f.name not in ds.schema.names]
    if not missing:
        return ds
    table = ds if isinstance(ds, pa.Table) else ds.to_table()
    for f in missing:
        table = table.append_column(f, pa.nulls(len(table), f.type))
    return table


def connect(layout: DataLayout) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    con = duckdb.connect(":memory:")
    views = _views(layout)
    for name, sql in views.items():
        con.execute(f"CREATE VIEW {name} AS {sql}")
    for name, ds in _lance_tables(layout).items():
        con.register(name, ds)
        views[name] = "lance"
    root = str(Path(layout.root).resolve())
    # DuckDB also allows its temp directory (default <cwd>/.tmp, readable through read_text): point it
    # at a private, empty folder so only the data root is readable
    con.execute(f"SET temp_directory = {sql_literal(_spill_dir())}")
    con.execute(f"SET allowed_directories = [{sql_literal(root)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con, sorted(views)


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise ReadOnlyError(f"cannot parse SQL: {e}") from e
    if not statements:
        raise ReadOnlyError("no SQL statement given")
    for st in statements:
        if st.type not in ALLOWED:
            raise ReadOnlyError(f"the catalog is read-only: {st.type.name} statements are refused; use SELECT")


def store_models(layout: DataLayout) -> tuple[str, str, str] | None:
    """(vae_id, vlm_id, text_model) the store's latents were made with, or None without a store.

    Several ids in one column (a store mixing model generations) come back joined by " + " and
    marked MIXED, so nobody reads a stale one as the store's.
    """
    try:
        rows = query(layout, "SELECT list(DISTINCT vae_id ORDER BY vae_id), list(DISTINCT vlm_id ORDER BY vlm_id), "
                             "list(DISTINCT text_model ORDER BY text_model) FROM store_clips").fetchone()
    except Exception:  # noqa: BLE001 - no store, or one from an older build
        return None
    if rows is None or rows[0] is None:
        return None
    return tuple(_one(ids) for ids in rows)  # type: ignore[return-value]


def _one(ids: list | None) -> str | None:
    ids = [i for i in (ids or []) if i is not None]
    if not ids:
        return None
    return ids[0] if len(ids) == 1 else " + ".join(ids) + " (MIXED)"


def mixed_models(layout: DataLayout) -> str | None:
    """A sentence naming the mixed model ids, or None when every row shares its models."""
    models = store_models(layout)
    bad = [m for m in (models or ()) if m and m.endswith("(MIXED)")]
    return "; ".join(bad) if bad else None


def query(layout: DataLayout, sql: str) -> duckdb.DuckDBPyRelation | None:
    """Run one read-only query; returns the relation of the last statement."""
    con, views = connect(layout)
    check_read_only(con, sql)
    try:
        return con.sql(sql)
    except duckdb.CatalogException as e:
        raise ReadOnlyError(f"{e}\navailable tables: {', '.join(views) or 'none (run make shards first)'}") from e


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_out_path(layout: DataLayout, out: str | Path, force: bool = False) -> Path:
    """Where `--out` may write: never inside the data root (whatever `force` says), not an existing file
    unless `force`, never a directory. Raises ReadOnlyError saying which rule refused it."""
    out = Path(out)
    root = Path(layout.root).resolve()
    where = out.parent.resolve() / out.name  # the name itself (a symlink is replaced, not followed, on rename)
    target = out.resolve()  # and where it leads, if it is a symlink
    for p in dict.fromkeys((where, target)):
        if _inside(p, root):
            raise ReadOnlyError(f"refused --out {out}: it is inside the data root {root} ({p}); the catalog is "
                                "read-only and never writes there, even with --force; write the result elsewhere")
    if out.is_dir() or target.is_dir():
        raise ReadOnlyError(f"refused --out {out}: it is a directory; give a file name")
    if (out.exists() or out.is_symlink()) and not force:
        raise ReadOnlyError(f"refused --out {out}: the file exists; pass --force to replace it, or choose another name")
    return out


def write_out(path: Path, data: bytes | Callable[[io.BufferedWriter], None], force: bool) -> None:
    """Publish a query result at a path `check_out_path` accepted."""
    write = data if callable(data) else (lambda f: f.write(data))
    try:
        publish_with(path, write, replace=force)
    except FileExistsError:
        raise ReadOnlyError(f"refused --out {path}: the file appeared while the query ran; pass --force to "
                            "replace it") from None
