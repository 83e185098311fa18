"""Infrastructure errors are not bad input: the run stops non-zero and nothing published is touched."""

from __future__ import annotations

import errno
import shutil

import pytest

import ingest.stage as stage
from ingest.failures import read_ledger
from ingest.pipeline import run_ingest
from robomirror.errors import ConfigError, InfrastructureError
from robomirror.paths import DataLayout
from tests.conftest import TEST_CFG, copy_sample, run_module, shard_digests


def _published(tmp_path, small_sample, ingested):
    src = copy_sample(small_sample, tmp_path / "src")
    layout = DataLayout(tmp_path / "data")
    shutil.copytree(ingested[0].root / "shards", layout.root / "shards")
    return src, layout


def test_a_read_only_or_full_staging_folder_stops_the_run(small_sample, ingested, tmp_path, monkeypatch):
    src, layout = _published(tmp_path, small_sample, ingested)
    before = shard_digests(layout)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stage, "stage_samples", full)
    with pytest.raises(InfrastructureError, match="No space left") as e:
        run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    assert "nothing" in str(e.value)
    assert shard_digests(layout) == before  # not one published byte changed
    assert read_ledger(layout.ledger("ingest")) == []  # no "internal" rows for the machine's fault


def test_eio_while_reading_is_not_bad_input(small_sample, ingested, tmp_path, monkeypatch):
    src, layout = _published(tmp_path, small_sample, ingested)
    before = shard_digests(layout)

    def eio(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(stage, "hash_sources", eio)
    with pytest.raises(InfrastructureError, match="Input/output"):
        run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    assert shard_digests(layout) == before


def test_a_missing_source_root_changes_nothing(small_sample, ingested, tmp_path):
    src, layout = _published(tmp_path, small_sample, ingested)
    before = shard_digests(layout)
    moved = tmp_path / "moved"
    src["nymeria"].rename(moved)
    with pytest.raises(ConfigError, match="not found"):
        run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    out = run_module("ingest", "--data-root", str(layout.root), "run", "--executor", "serial", "--no-progress",
                     "--motionx", str(src["motionx"]), "--nymeria", str(src["nymeria"]))
    assert out.returncode == 2 and "not found" in out.stderr
    assert shard_digests(layout) == before
