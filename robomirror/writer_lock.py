"""One writer per data root: an exclusive lock that every writing stage takes; readers never do.

The lock is `<root>/.writer.lock`, held with `fcntl.flock` on an open descriptor for as long as the
writer runs. The kernel drops it when the holder exits in any way (crash, SIGKILL), so a stale lock
from a dead process is taken over safely by the next writer, without guessing from pids. The file's
body names the holder (pid, host, start time, command) for the error a second writer gets.

Scope: the lock is per data root and per driver process. Ray workers write only staging files the
driver plans and publishes, so they do not lock. On a shared file system the guarantee is the file
system's `flock` across hosts: local disks and NFSv4 (lockd) honour it; some FUSE and Lustre mounts
without `-o flock` do not — there, run one driver per data root (the holder's host is in the
error so it can be found). Re-entrant within a process (a stage calling another stage's writer).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from robomirror.errors import InfrastructureError, RoboMirrorError

LOCK_NAME = ".writer.lock"
_held: set[str] = set()  # resolved roots this process holds


class DataRootBusy(RoboMirrorError):
    """Another process is writing to this data root."""


def holder(root: Path) -> dict:
    """Who holds (or last held) the lock: {pid, host, started, command}, or {} if never taken."""
    try:
        return json.loads((Path(root) / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except PermissionError:
        return True
    except (OSError, ValueError, TypeError):
        return False


def _current_holder(root: Path, wait_s: float = 0.5) -> dict:
    """The holder named in the lock file once it is the current one: a writer that has just taken the
    lock writes its name a moment later, so an empty body (or, on this host, a pid no longer alive: the
    previous holder's) is read again for up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        h = holder(root)
        current = "pid" in h and (h.get("host") != socket.gethostname() or _alive(h["pid"]))
        if current or time.monotonic() >= deadline:
            return h
        time.sleep(0.01)


@contextmanager
def writer_lock(root: Path, command: str) -> Iterator[None]:
    """Hold the data root's writer lock for the block; raise DataRootBusy at once if it is held."""
    root = Path(root)
    key = str(root.resolve())
    if key in _held:  # re-entrant: the outer block holds and releases it
        yield
        return
    path = root / LOCK_NAME
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # read-only, full, or gone: the machine's fault, not the input's
        raise InfrastructureError(f"cannot take the writer lock {path}: {e.strerror or e}; the data root must be "
                                  "writable (nothing was read or changed)") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        h = _current_holder(root)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["started"])) if "started" in h else "?"
        raise DataRootBusy(
            f"data root {root} is being written by pid {h.get('pid', '?')} on host {h.get('host', '?')} since "
            f"{since} ({h.get('command', '?')}); one writer per data root — wait for it, stop it, or use another "
            "--data-root (reading, e.g. `python -m catalog`, is never blocked)") from None
    body = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                       "command": command, "argv": sys.argv[:6]})
    os.ftruncate(fd, 0)
    os.pwrite(fd, body.encode(), 0)
    _held.add(key)
    try:
        yield
    finally:
        _held.discard(key)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def writes_data_root(command: str):
    """Decorator for a stage's entry point `f(layout, ...)`: the whole call holds the writer lock."""
    import functools

    def wrap(f):
        @functools.wraps(f)
        def run(layout, *args, **kwargs):
            with writer_lock(layout.root, command):
                return f(layout, *args, **kwargs)
        return run
    return wrap
