"""Atomic publishing: temp file in the same directory, fsync, rename, fsync the directory.

A reader either sees the previous complete file or the new complete file under a final name,
never a partial one. Temp files carry a `.tmp-` infix so `sweep_temp_files` can remove leftovers
of a killed run.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

TMP_INFIX = ".tmp-"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamp: same bytes on every run


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_with(path: Path, write: Callable[[io.BufferedWriter], None], sync_dir: bool = True,
                 replace: bool = True) -> None:
    """Write `path` atomically through the callback `write(file)`. sync_dir=False leaves the directory
    fsync to the caller, who must do it before anything that depends on the name (one for many files).
    replace=False publishes only if the name is free: a hard link, which fails with FileExistsError if
    the name appeared meanwhile (where hard links are not supported, a check then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_INFIX}{os.getpid()}")
    try:
        with open(tmp, "wb" if replace else "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # no hard links here (some FUSE/SMB mounts): check, then rename
                if path.exists():
                    raise FileExistsError(str(path)) from None
                os.replace(tmp, path)
            tmp.unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait


@functools.cache
def _sync_file_range():
    """libc's sync_file_range (Linux), or None where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing `fd`'s dirty pages to disk now, without waiting (Linux
    sync_file_range WRITE). Durability still needs an fsync; this lets the disk work while the
    caller prepares the next file. A no-op where unavailable."""
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # advisory: a failure here only loses the overlap


class DeferredPublish:
    """Publish many files atomically with their disk writes overlapped, one durability wait at the end.

    write(path, cb) writes under a temp name and starts the file's writeback at once; commit() then
    fsyncs every temp (mostly written back by then), renames each into place and fsyncs their
    directories once. A file therefore never carries its final name before its bytes are durable, as
    with publish_with, but the disk writes of file i overlap the preparation of file i+1 instead of
    one fsync wait per file. Leaving the `with` block on an error removes the temps (a killed run's
    temps are removed by sweep_temp_files).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def write(self, path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}{TMP_INFIX}{os.getpid()}")
        self._pending.append((tmp, path))
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            start_writeback(f.fileno())

    def commit(self) -> None:
        for tmp, _ in self._pending:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for tmp, path in self._pending:
            os.replace(tmp, path)
        for parent in dict.fromkeys(path.parent for _, path in self._pending):
            fsync_dir(parent)
        self._pending = []

    def abort(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending = []

    def __enter__(self) -> DeferredPublish:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, f) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self._f.write(data)

    def tell(self) -> int:  # tarfile asks for the position when it starts
        return self._f.tell()

    def flush(self) -> None:
        self._f.flush()


def publish_bytes(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`."""
    publish_with(path, lambda f: f.write(data))


def json_bytes(obj: Any) -> bytes:
    """`obj` as sorted, indented JSON (deterministic bytes)."""
    return (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode()


def publish_json(path: Path, obj: Any) -> None:
    """Atomically write `obj` as sorted, indented JSON (deterministic bytes)."""
    publish_bytes(path, json_bytes(obj))


def sweep_temp_files(root: Path) -> int:
    """Delete temp files a killed run left below `root`; returns how many."""
    n = 0
    if root.exists():
        for p in root.rglob(f"*{TMP_INFIX}*"):
            if p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n


def copy_range(src_fd: int, dst_fd: int, offset: int, count: int) -> None:
    """Append `count` bytes of src from `offset` to dst (at its position) inside the kernel:
    copy_file_range, else sendfile, else read + write."""
    done = 0
    while done < count:
        try:
            n = os.copy_file_range(src_fd, dst_fd, count - done, offset + done)
        except OSError:  # EXDEV (another file system on some kernels), ENOSYS, EINVAL
            try:
                n = os.sendfile(dst_fd, src_fd, offset + done, count - done)
            except OSError:
                data = os.pread(src_fd, min(count - done, 8 << 20), offset + done)
                n = os.write(dst_fd, data) if data else 0
        if n <= 0:
            raise OSError(f"source ended {count - done} bytes early while copying")
        done += n


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise arrays as an .npz with fixed timestamps and sorted members.

    `np.savez` stamps the current time into the zip, which would make shards differ between
    runs. Object arrays are refused: an .npz here never needs pickle to load.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            arr = np.asarray(arrays[name])
            if arr.dtype.hasobject:
                raise TypeError(f"npz member {name!r} has dtype object; only plain dtypes are stored")
            member = io.BytesIO()
            np.lib.format.write_array(member, np.require(arr, requirements="C"), allow_pickle=False)  # keeps 0-d
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def load_npz_bytes(data: bytes) -> dict[str, np.ndarray]:
    """Inverse of `npz_bytes`; never unpickles."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def canonical_json(obj: Any) -> bytes:
    """JSON bytes that depend only on content (sorted keys, no whitespace variance)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def digest_of(parts: Iterable[Any]) -> str:
    """sha256 over the canonical JSON of `parts`: a stable content fingerprint."""
    return sha256_bytes(canonical_json(list(parts)))
