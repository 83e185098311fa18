"""Infrastructure faults from real file systems, not monkeypatches: a read-only bind mount and full tmpfs
mounts. Each test skips when this machine does not let it mount (not root, no mount namespace)."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingest.failures import read_ledger
from ingest.pipeline import run_ingest
from robomirror.errors import InfrastructureError
from robomirror.paths import DataLayout
from robomirror.shards import manifest_shards
from tests.conftest import TEST_CFG, copy_sample, run_module, shard_digests
from tests.ingest.test_generations import _change_one_sequence, _listed_clips_are_present

PAGE = 4096


def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount here ({r.stderr.strip() or r.returncode}); the fault needs a real mount")


@contextmanager
def _mounted(target: Path, *args: str):
    target.mkdir(parents=True, exist_ok=True)
    _mount(*args, str(target))
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _bytes_under(path: Path) -> int:
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in path.rglob("*") if p.is_file())


@pytest.fixture
def published(small_sample, ingested, tmp_path):
    src = copy_sample(small_sample, tmp_path / "src")
    root = tmp_path / "data"
    shutil.copytree(ingested[0].root / "shards", root / "shards")
    return src, DataLayout(root)


@pytest.mark.parametrize("stage", ["ingest", "retarget"])
def test_a_read_only_data_root_exits_2_and_changes_nothing(published, tmp_path, stage):
    src, layout = published
    before = shard_digests(layout)
    with _mounted(tmp_path / "ro", "--bind", str(layout.root)) as ro:
        r = subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
        args = ["--motionx", str(src["motionx"]), "--nymeria", str(src["nymeria"])] if stage == "ingest" else []
        out = run_module(stage, "--data-root", str(ro), "run", "--executor", "serial", "--no-progress", *args)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Read-only file system" in out.stderr and "writable" in out.stderr
    assert "Traceback" not in out.stderr
    assert shard_digests(layout) == before


def test_a_full_data_root_stops_before_publishing(published, tmp_path):
    """The root is a tmpfs with room for what is published and 64 KiB more: staging hits ENOSPC."""
    src, layout = published
    before = shard_digests(layout)
    size = _bytes_under(layout.root) + 64 * 1024 + 16 * PAGE  # + room for the folders
    full = DataLayout(tmp_path / "full")
    with _mounted(full.root, "-t", "tmpfs", "-o", f"size={size}", "tmpfs"):
        shutil.copytree(layout.root / "shards", full.root / "shards")
        with pytest.raises(InfrastructureError, match="No space left on device") as e:
            run_ingest(full, src, TEST_CFG, executor="serial", progress=False)
        assert "nothing" in str(e.value)
        assert shard_digests(full) == before
        assert read_ledger(full.ledger("ingest")) == []  # no ledger rows blaming the sources
        for ds in src:
            assert _listed_clips_are_present(full, full.manifest("ingest", ds)) > 0


def test_shards_filling_up_mid_publish_keep_the_committed_generation(published, tmp_path):
    """Staging fits (the work folder is on disk); the new generation's shards do not: the old one stays whole."""
    src, layout = published
    _change_one_sequence(src)
    run_ingest(DataLayout(tmp_path / "staged"), src, TEST_CFG, executor="serial", progress=False)
    shutil.copytree(tmp_path / "staged" / "work", layout.root / "work")  # gen B staged beside gen A
    before = shard_digests(layout)
    listed = {ds: manifest_shards(layout.manifest("ingest", ds)) for ds in src}
    shards = layout.root / "shards"
    shutil.move(shards, tmp_path / "shards_a")
    size = _bytes_under(tmp_path / "shards_a") + 64 * 1024 + 16 * PAGE
    with _mounted(shards, "-t", "tmpfs", "-o", f"size={size}", "tmpfs"):
        shutil.copytree(tmp_path / "shards_a", shards, dirs_exist_ok=True)
        with pytest.raises(InfrastructureError, match="No space left on device") as e:
            run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
        assert "nothing was committed" in str(e.value)
        for ds in src:
            assert manifest_shards(layout.manifest("ingest", ds)) == listed[ds]
            assert _listed_clips_are_present(layout, layout.manifest("ingest", ds)) > 0
        assert {k: v for k, v in shard_digests(layout).items() if k in before} == before
        assert not list(shards.rglob("*.tmp-*"))
