"""One writer per data root: a second writer is refused with the holder's name; a dead holder's lock
is taken over; readers are never blocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from robomirror.writer_lock import LOCK_NAME, DataRootBusy, holder, writer_lock
from tests.conftest import REPO, run_module

HOLD = ("import sys, time; from pathlib import Path; from robomirror.writer_lock import writer_lock\n"
        "with writer_lock(Path(sys.argv[1]), 'test holder'):\n"
        "    print('held', flush=True); time.sleep(60)\n")


def _holder_process(root) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_writer_is_refused_with_the_holder_named(tmp_path, small_sample):
    p = _holder_process(tmp_path)
    try:
        with pytest.raises(DataRootBusy) as e:
            with writer_lock(tmp_path, "second"):
                pass
        msg = str(e.value)
        assert f"pid {p.pid}" in msg and "test holder" in msg and os.uname().nodename in msg
        # the stage CLIs refuse too, with exit 2 and the same message, and publish nothing
        out = run_module("ingest", "--data-root", str(tmp_path), "run", "--executor", "serial", "--no-progress",
                         "--motionx", str(small_sample["motionx"]))
        assert out.returncode == 2 and f"pid {p.pid}" in out.stderr
        assert not (tmp_path / "shards").exists()
        # readers are not blocked
        out = run_module("catalog", "--data-root", str(tmp_path), "sql", "SELECT 1 AS one")
        assert out.returncode == 0, out.stderr
    finally:
        p.kill()
        p.wait()


def test_a_dead_holders_lock_is_taken_over(tmp_path):
    p = _holder_process(tmp_path)
    p.send_signal(signal.SIGKILL)  # no chance to clean up: the file stays, the kernel lock goes
    p.wait()
    assert (tmp_path / LOCK_NAME).exists() and holder(tmp_path)["pid"] == p.pid
    with writer_lock(tmp_path, "successor"):
        assert holder(tmp_path)["pid"] == os.getpid() and holder(tmp_path)["command"] == "successor"


def test_reentrant_in_one_process(tmp_path):
    with writer_lock(tmp_path, "outer"):
        with writer_lock(tmp_path, "inner"):
            assert holder(tmp_path)["command"] == "outer"
    with writer_lock(tmp_path, "again"):  # released after the outer block
        pass


def test_two_ingest_runs_started_together_one_wins(small_sample, tmp_path):
    root = tmp_path / "data"
    cmd = [sys.executable, "-m", "ingest", "--data-root", str(root), "run", "--executor", "serial", "--no-progress",
           "--motionx", str(small_sample["motionx"]), "--nymeria", str(small_sample["nymeria"])]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = outs[[p.returncode for p in procs].index(2)][1]
    assert "is being written by pid" in loser
    time.sleep(0.1)
    from ingest.failures import read_ledger
    from robomirror.paths import DataLayout

    assert read_ledger(DataLayout(root).ledger("ingest")) == []  # the winner's run was not disturbed
