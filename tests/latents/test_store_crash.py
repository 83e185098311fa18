"""The store under a crash and under a concurrent reader: whole batches or nothing, no duplicates."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from latents.store import CLIPS, Store
from tests.conftest import REPO

BATCH, BATCHES = 100, 40

WRITER = textwrap.dedent(f"""
    import sys, numpy as np
    from latents.store import Store, CLIPS, MOTION_DIM
    from latents.text import TEXT_DIM
    store = Store(sys.argv[1], video_dim=64)
    for b in range({BATCHES}):
        rows = [{{"clip_id": f"c{{b:03d}}-{{i:03d}}", "text": str(b),
                 "motion_latent": np.full(MOTION_DIM, b, np.float32).tolist(),
                 "text_emb": np.full(TEXT_DIM, i, np.float32).tolist()}} for i in range({BATCH})]
        store.upsert(CLIPS, rows, batch={BATCH})
""")


def _writer(path):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_rows(store: Store, at_least: int, proc, timeout: float = 120) -> None:
    """Until the table has `at_least` rows; fails if the writer ends or the time runs out first."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if store.count(CLIPS) >= at_least:
                return
        except Exception:  # noqa: BLE001 - the table may not exist yet
            pass
        time.sleep(0.02)
    raise AssertionError(f"no {at_least} rows while the writer ran (writer exit {proc.poll()})")


def test_killed_mid_commit_then_resumed(tmp_path):
    path = tmp_path / "store"
    proc = _writer(path)
    store = Store(path)
    _wait_rows(store, 5 * BATCH, proc)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the writer finished before it could be killed"
    n = Store(path).count(CLIPS)
    assert n % BATCH == 0 and 0 < n < BATCH * BATCHES  # whole batches only
    rerun = _writer(path)
    assert rerun.wait(timeout=300) == 0
    rows = Store(path).table(CLIPS).to_arrow().column("clip_id").to_pylist()
    assert len(rows) == len(set(rows)) == BATCH * BATCHES  # resumed, no duplicates


def test_reader_sees_a_consistent_version_during_writes(tmp_path):
    path = tmp_path / "store"
    proc = _writer(path)
    store = Store(path)
    _wait_rows(store, 2 * BATCH, proc)
    reader = Store(path).table(CLIPS)
    pinned = reader.version
    reader.checkout(pinned)
    first = reader.count_rows()
    seen = []
    while proc.poll() is None:
        seen.append(reader.count_rows())  # the pinned version never changes under the reader
        latest = Store(path).count(CLIPS)
        assert latest % BATCH == 0  # writers publish whole batches
        time.sleep(0.01)
    assert proc.wait() == 0
    assert len(seen) >= 3, "the writer finished before the reader could watch it write"
    assert Store(path).count(CLIPS) > first  # the writer did commit more while the reader was pinned
    assert set(seen) == {first} and first % BATCH == 0
