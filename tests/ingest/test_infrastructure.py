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


@pytest.mark.parametrize("where,code,text", [
    ("stage_samples", errno.ENOSPC, "No space left on device"),  # a full (or read-only) staging folder
    ("hash_sources", errno.EIO, "Input/output error"),  # EIO while reading a source
])
def test_an_io_failure_stops_the_run_and_changes_nothing(small_sample, ingested, tmp_path, monkeypatch,
                                                          where, code, text):
    src, layout = _published(tmp_path, small_sample, ingested)
    before = shard_digests(layout)

    def fail(*a, **k):
        raise OSError(code, text)

    monkeypatch.setattr(stage, where, fail)
    with pytest.raises(InfrastructureError, match=text) as e:
        run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    assert "nothing" in str(e.value)
    assert shard_digests(layout) == before  # not one published byte changed
    assert read_ledger(layout.ledger("ingest")) == []  # no "internal" rows for the machine's fault


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


def _manifest_seqs(layout):
    import pyarrow.parquet as pq

    return sorted(set(pq.read_table(layout.manifest("ingest", "motionx")).column("sequence").to_pylist()))


def test_a_source_folder_moved_away_and_back(small_sample, tmp_path):
    src = copy_sample(small_sample, tmp_path / "src")
    layout = DataLayout(tmp_path / "data")
    run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    before, seqs = shard_digests(layout), _manifest_seqs(layout)
    humanml = src["motionx"] / "motion" / "motion_generation" / "smplx322" / "humanml"
    gone = sorted(p.stem for p in humanml.glob("*.npy"))
    assert gone and set(gone) <= set(seqs)
    humanml.rename(tmp_path / "away")
    s = run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    assert s.kept_without_source == len(gone)
    assert shard_digests(layout) == before  # nothing deleted without --prune
    (tmp_path / "away").rename(humanml)
    run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    assert shard_digests(layout) == before  # back: byte-identical
    humanml.rename(tmp_path / "away")
    run_ingest(layout, src, TEST_CFG, executor="serial", progress=False, prune=True)
    assert _manifest_seqs(layout) == sorted(set(seqs) - set(gone))  # --prune removes exactly those


def test_without_staging_a_vanished_source_is_refused_not_dropped(small_sample, tmp_path):
    src = copy_sample(small_sample, tmp_path / "src")
    layout = DataLayout(tmp_path / "data")
    run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    before = shard_digests(layout)
    shutil.rmtree(layout.root / "work")  # make clean-work
    (src["motionx"] / "motion" / "motion_generation" / "smplx322" / "humanml").rename(tmp_path / "away")
    with pytest.raises(InfrastructureError, match="--prune"):
        run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    assert shard_digests(layout) == before


def test_a_source_that_became_invalid_is_not_republished_from_stale_staging(small_sample, tmp_path):
    import numpy as np

    src = copy_sample(small_sample, tmp_path / "src")
    layout = DataLayout(tmp_path / "data")
    run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    npy = sorted((src["motionx"] / "motion" / "motion_generation" / "smplx322" / "idea400").glob("*.npy"))[0]
    a = np.load(npy)
    a[3, 5] = np.nan
    np.save(npy, a)
    run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    assert npy.stem not in _manifest_seqs(layout)
    assert [(f.sequence, f.reason) for f in read_ledger(layout.ledger("ingest"))] == [(npy.stem, "non_finite")]
