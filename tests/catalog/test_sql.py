"""Read-only SQL over manifests and the failure ledger."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from catalog.sql import query
from robomirror.errors import ReadOnlyError
from tests.conftest import run_module


def test_counts_join_manifest_and_shards(ingested):
    layout, summary = ingested
    rows = query(layout, "SELECT dataset, count(*) AS n, count(DISTINCT shard) AS shards FROM clips GROUP BY ALL ORDER BY 1").fetchall()
    assert {r[0]: r[1] for r in rows} == {ds: r.clips for ds, r in summary.per_dataset.items()}
    assert {r[0]: r[2] for r in rows} == {ds: r.shards for ds, r in summary.per_dataset.items()}
    texts = query(layout, "SELECT count(*) FROM (SELECT unnest(texts) AS t FROM clips) WHERE t.kind = 'atomic_action'").fetchone()[0]
    assert texts > 0
    n = query(layout, "SELECT count(*) FROM failures").fetchone()[0]
    assert n == summary.failed == 0
    manifest = pq.read_table(layout.manifest("ingest", "motionx"))
    assert query(layout, "SELECT sum(n_frames) FROM clips WHERE dataset='motionx'").fetchone()[0] == sum(manifest.column("n_frames").to_pylist())


@pytest.mark.parametrize("sql", [
    "CREATE TABLE x AS SELECT 1",
    "COPY (SELECT 1) TO '/tmp/robomirror_should_not_exist.csv'",
    "ATTACH '/tmp/robomirror_x.db' AS x",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "SELECT 1; DROP VIEW clips",
    "INSERT INTO clips SELECT * FROM clips",
])
def test_write_statements_are_refused(ingested, sql):
    from pathlib import Path

    layout, _ = ingested
    targets = [Path("/tmp/robomirror_should_not_exist.csv"), Path("/tmp/robomirror_x.db")]
    for t in targets:
        t.unlink(missing_ok=True)
    with pytest.raises(ReadOnlyError, match="read-only"):
        query(layout, sql)
    assert not any(t.exists() for t in targets)  # refused before anything ran: no file written
    assert query(layout, "SELECT count(*) FROM clips").fetchone()[0] > 0  # and the views are intact


def test_files_outside_the_data_root_are_not_readable(ingested):
    layout, _ = ingested
    with pytest.raises(Exception, match="disabled|Permission"):
        query(layout, "SELECT * FROM read_csv('/etc/passwd')").fetchall()


def test_cli_table_and_json(ingested):
    layout, _ = ingested
    out = run_module("catalog", "--data-root", str(layout.root), "sql", "SELECT view, count(*) AS n FROM clips GROUP BY 1 ORDER BY 1")
    assert out.returncode == 0, out.stderr
    assert "egocentric" in out.stdout and "third_person" in out.stdout
    out = run_module("catalog", "--data-root", str(layout.root), "sql", "DELETE FROM clips")
    assert out.returncode == 2 and "read-only" in out.stderr
    out = run_module("catalog", "--data-root", str(layout.root), "sql", "SELECT clip_id FROM clips LIMIT 2", "--format", "json")
    assert out.returncode == 0 and out.stdout.count("clip_id") == 2


def test_a_quote_in_the_data_root_and_the_cwd_temp_folder(ingested, tmp_path, monkeypatch):
    import shutil

    from robomirror.paths import DataLayout

    src, _ = ingested
    odd = DataLayout(tmp_path / "it's data")
    shutil.copytree(src.root / "shards", odd.root / "shards")
    n = query(odd, "SELECT count(*) FROM clips").fetchone()[0]
    assert n == query(src, "SELECT count(*) FROM clips").fetchone()[0] > 0
    (tmp_path / "cwd" / ".tmp").mkdir(parents=True)
    (tmp_path / "cwd" / ".tmp" / "secret.txt").write_text("the content")
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(Exception) as e:  # DuckDB's default temp folder is no longer readable
        query(odd, "SELECT content FROM read_text('.tmp/secret.txt')").fetchall()
    assert "Permission" in str(e.value) and "the content" not in str(e.value)


def test_errors_while_fetching_get_a_clear_message_too(ingested, capsys):
    from catalog.__main__ import main

    layout, _ = ingested
    # parses and binds fine; fails only while rows are produced
    rc = main(["--data-root", str(layout.root), "sql", "SELECT CAST(sequence AS INTEGER) FROM clips"])
    assert rc == 2 and "error: ConversionException" in capsys.readouterr().err
