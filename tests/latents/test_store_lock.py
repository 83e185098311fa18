"""The writer lock lives in the store's own write methods: two processes calling `Store.upsert` directly
cannot interleave (one is refused, naming the holder), and a CLI that holds the lock re-enters it."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from latents.store import CLIPS, Store
from robomirror.writer_lock import DataRootBusy, writer_lock
from tests.conftest import REPO, run_module
from tests.latents.test_store import VDIM, _row

N_ROWS = 2000


def _tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _racer(store_path: str, barrier, results) -> None:  # runs in a spawned process (Lance is not fork-safe)
    store = Store(Path(store_path), video_dim=VDIM)
    rows = [_row(i) for i in range(N_ROWS)]
    barrier.wait(timeout=120)  # both processes are imported and ready: start the upserts together
    try:
        results.put(("ok", os.getpid(), store.upsert(CLIPS, rows, batch=50)))
    except DataRootBusy as e:
        results.put(("busy", os.getpid(), str(e)))


def test_two_processes_racing_on_the_library_api(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(tmp_path / "store"), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    out = sorted(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (busy, loser, msg), (ok, winner, inserted) = out
    assert (busy, ok) == ("busy", "ok"), out  # the upserts overlap (40 batches each), so one is refused
    assert inserted == N_ROWS
    assert f"pid {winner}" in msg and "latents.store.Store.upsert" in msg and "one writer per data root" in msg
    ids = Store(tmp_path / "store").table(CLIPS).to_arrow().column("clip_id").to_pylist()
    assert len(ids) == len(set(ids)) == N_ROWS  # before the lock moved into the store: 3,100 rows


HOLD = ("import sys, time; from pathlib import Path; from robomirror.writer_lock import writer_lock\n"
        "with writer_lock(Path(sys.argv[1]), 'ingest run'):\n"
        "    print('held', flush=True); time.sleep(60)\n")


@pytest.mark.parametrize("write", ["upsert", "compact", "delete", "create"])
def test_every_write_method_is_refused_while_another_process_holds_the_root(tmp_path, write):
    store = Store(tmp_path / "store", video_dim=VDIM)
    store.upsert(CLIPS, [_row(i) for i in range(5)])
    before = _tree_digest(tmp_path / "store")
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        calls = {"upsert": lambda: store.upsert(CLIPS, [_row(9)]), "compact": store.compact,
                 "delete": lambda: store.delete_clips(["c000"]),
                 "create": lambda: Store(tmp_path / "store", video_dim=VDIM).table("video_tokens")}
        with pytest.raises(DataRootBusy, match=f"pid {p.pid} .*ingest run"):
            calls[write]()
        # the CLI gives the same refusal with exit 2
        out = run_module("latents", "--data-root", str(tmp_path), "compact")
        assert out.returncode == 2 and f"pid {p.pid}" in out.stderr and "one writer per data root" in out.stderr
    finally:
        p.kill()
        p.wait()
    assert _tree_digest(tmp_path / "store") == before  # nothing written: the rows and versions are as they were
    assert store.count(CLIPS) == 5  # reading is never blocked


def test_a_holder_re_enters_its_own_lock(tmp_path):
    """`latents build` and `latents compact` hold the root's lock and call the store: no self-deadlock."""
    with writer_lock(tmp_path, "latents build"):
        store = Store(tmp_path / "store", video_dim=VDIM)
        assert store.upsert(CLIPS, [_row(i) for i in range(3)]) == 3
        store.compact()
    out = run_module("latents", "--data-root", str(tmp_path), "compact")
    assert out.returncode == 0, out.stderr
    assert "clips:" in out.stdout and Store(tmp_path / "store").count(CLIPS) == 3
