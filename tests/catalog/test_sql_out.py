"""`catalog sql --out`: never inside the data root (not even with --force), never over an existing file
without --force, always atomic; the published manifest and ledger stay byte-identical."""

from __future__ import annotations

import hashlib
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.__main__ import main
from robomirror.atomic import TMP_INFIX
from tests.conftest import run_module


@pytest.fixture
def root(tmp_path):
    """A tiny data root: one manifest and one ledger, enough for the views."""
    root = tmp_path / "data"
    (root / "shards" / "ingest" / "motionx").mkdir(parents=True)
    (root / "ledger").mkdir()
    pq.write_table(pa.table({"clip_id": ["a", "b", "c"], "dataset": ["motionx"] * 3, "n_frames": [10, 20, 30]}),
                   root / "shards" / "ingest" / "motionx" / "manifest.parquet")
    pq.write_table(pa.table({"source": ["x.npy"], "reason": ["bad_shape"]}), root / "ledger" / "ingest.parquet")
    return root


def _digests(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _sql(root, *args):
    return main(["--data-root", str(root), "sql", "SELECT * FROM clips ORDER BY clip_id", *args])


@pytest.mark.parametrize("target, force", [
    ("shards/ingest/motionx/manifest.parquet", False),  # the attack: an empty manifest committed with rc 0
    ("shards/ingest/motionx/manifest.parquet", True),  # --force never reaches inside the root
    ("ledger/ingest.parquet", True),  # broke every later query, even SELECT 1
    ("new.parquet", False),  # a new file inside the root is refused too
    ("shards/ingest/motionx", True),
])
def test_out_inside_the_data_root_is_refused(root, capsys, target, force):
    before = _digests(root)
    rc = _sql(root, "--format", "parquet", "--out", str(root / target), *(["--force"] if force else []))
    assert rc == 2
    assert "inside the data root" in capsys.readouterr().err
    assert _digests(root) == before
    assert _sql(root, "--format", "csv") == 0  # the catalog still reads


def test_ways_around_the_root_check_are_closed(root, tmp_path, capsys):
    before = _digests(root)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "to_manifest.parquet").symlink_to(root / "shards" / "ingest" / "motionx" / "manifest.parquet")
    (outside / "root_link").symlink_to(root)
    for out in (outside / "to_manifest.parquet",  # a symlink to a published file
                outside / "root_link" / "ledger" / "x.parquet",  # a path through a symlinked folder
                outside / ".." / "data" / "ledger" / "y.csv"):  # `..`
        assert _sql(root, "--format", "csv", "--out", str(out), "--force") == 2
        assert "inside the data root" in capsys.readouterr().err
    cwd = os.getcwd()
    try:  # a relative path resolved from inside the root
        os.chdir(root / "shards")
        assert _sql(root, "--format", "json", "--out", "z.json") == 2
    finally:
        os.chdir(cwd)
    assert _digests(root) == before


def test_an_existing_file_needs_force_and_is_replaced_atomically(root, tmp_path, capsys):
    out = tmp_path / "result.parquet"
    assert _sql(root, "--format", "parquet", "--out", str(out)) == 0
    assert pd.read_parquet(out)["clip_id"].tolist() == ["a", "b", "c"]
    first = out.read_bytes()
    assert main(["--data-root", str(root), "sql", "SELECT 1 AS one", "--format", "parquet", "--out", str(out)]) == 2
    assert "the file exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == first
    assert main(["--data-root", str(root), "sql", "SELECT 1 AS one", "--format", "parquet", "--out", str(out),
                 "--force"]) == 0
    assert pd.read_parquet(out)["one"].tolist() == [1]
    assert not [p for p in tmp_path.iterdir() if TMP_INFIX in p.name]  # no temp left beside it
    csv = tmp_path / "r.csv"
    assert _sql(root, "--format", "csv", "--out", str(csv)) == 0
    assert csv.read_text().splitlines()[0] == "clip_id,dataset,n_frames"


def test_a_failing_query_writes_nothing(root, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["--data-root", str(root), "sql", "COPY clips TO 'x.csv'", "--format", "csv", "--out", str(out)]) == 2
    assert "read-only" in capsys.readouterr().err
    assert main(["--data-root", str(root), "sql", "SELECT * FROM nope", "--format", "csv", "--out", str(out)]) == 2
    assert not out.exists() and not list(tmp_path.glob(f"*{TMP_INFIX}*"))


def test_cli_refuses_with_exit_2(root):
    manifest = root / "shards" / "ingest" / "motionx" / "manifest.parquet"
    before = manifest.read_bytes()
    out = run_module("catalog", "--data-root", str(root), "sql", "SELECT * FROM clips WHERE false",
                     "--format", "parquet", "--out", str(manifest), "--force")
    assert out.returncode == 2 and "inside the data root" in out.stderr and "Traceback" not in out.stderr
    assert manifest.read_bytes() == before
