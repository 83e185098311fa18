"""Deterministic bytes, idempotent reruns, and resume after SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import tarfile
import time

from ingest.pipeline import run_ingest
from robomirror.paths import DataLayout
from tests.conftest import REPO, TEST_CFG, shard_digests


def test_two_clean_runs_are_byte_identical(ingested, small_sample, tmp_path):
    layout, _ = ingested
    other = DataLayout(tmp_path / "again")
    run_ingest(other, small_sample, TEST_CFG, executor="serial", progress=False)
    assert shard_digests(other) == shard_digests(layout)


def test_rerun_verifies_and_redoes_only_what_is_broken(ingested, small_sample, tmp_path):
    layout, _ = ingested
    work = DataLayout(tmp_path / "rerun")
    run_ingest(work, small_sample, TEST_CFG, executor="serial", progress=False)
    again = run_ingest(work, small_sample, TEST_CFG, executor="serial", progress=False)
    assert again.built == 0 and again.cached == again.sources and again.shards_rebuilt == 0
    # corrupt one shard and delete another: exactly those two are rebuilt, bytes as before
    shards = sorted(work.shard_dir("ingest", "motionx").glob("shard-*.tar"))
    data = bytearray(shards[0].read_bytes())
    data[1000] ^= 0xFF
    shards[0].write_bytes(bytes(data))
    shards[1].unlink()
    fixed = run_ingest(work, small_sample, TEST_CFG, executor="serial", progress=False)
    assert fixed.shards_rebuilt == 2
    assert shard_digests(work) == shard_digests(layout)


def _complete_tar(path) -> bool:
    with tarfile.open(path) as t:
        names = [m.name for m in t]
        for m in t:
            t.extractfile(m).read()
    keys = {n.split(".", 1)[0] for n in names}
    # every sample has its motion and meta (motion-only Motion-X clips have no video member)
    return bool(keys) and all(f"{k}.human.npz" in names and f"{k}.meta.json" in names for k in keys)


def test_sigkill_mid_run_then_resume_is_byte_identical(ingested, small_sample, tmp_path):
    layout, _ = ingested
    root = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ingest", "--data-root", str(root), "run", "--executor", "serial", "--no-progress",
           "--motionx", str(small_sample["motionx"]), "--nymeria", str(small_sample["nymeria"]),
           "--shard-mb", str(TEST_CFG.shard_target_bytes / 1e6)]
    killed_during = None
    for wait_for in ("work/ingest/motionx/*.json", "shards/ingest/motionx/shard-000000-*.json"):
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not list(root.glob(wait_for)):
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_during = wait_for
        proc.wait()
        # nothing partial under a final name: every visible shard is a complete tar
        for shard in root.glob("shards/ingest/*/shard-*.tar"):
            assert _complete_tar(shard), shard
    assert killed_during is not None, "the run finished before it could be killed"
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert shard_digests(DataLayout(root)) == shard_digests(layout)
    assert not list(root.rglob("*.tmp-*"))


def test_newer_format_version_is_refused_clearly(ingested, small_sample, tmp_path):
    import json

    import pytest

    from robomirror.errors import FormatVersionError

    work = DataLayout(tmp_path / "future")
    run_ingest(work, small_sample, TEST_CFG, executor="serial", progress=False)
    side = sorted(work.shard_dir("ingest", "nymeria").glob("shard-*.json"))[0]
    meta = json.loads(side.read_text())
    meta["format_version"] = 99
    side.write_text(json.dumps(meta))
    with pytest.raises(FormatVersionError, match="format_version 99 is newer"):
        run_ingest(work, small_sample, TEST_CFG, executor="serial", progress=False)
