"""A rerun does not read unchanged source files again (a Nymeria data.vrs is gigabytes), yet any change
to a file (size, mtime, a replaced inode) is hashed again: the cache can save time, never hide an edit."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import ingest.stage as stage


def _count_reads(monkeypatch) -> list[Path]:
    monkeypatch.setattr(stage, "MEMO_MIN_BYTES", 1)  # the memo is for big files (64 MiB): test it on small ones
    reads: list[Path] = []
    real = stage.sha256_file

    def counting(path: Path, *a, **k) -> str:
        reads.append(Path(path))
        return real(path, *a, **k)

    monkeypatch.setattr(stage, "sha256_file", counting)
    return reads


def _age(path: Path, seconds: float = 60.0) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_unchanged_file_is_hashed_once(tmp_path, monkeypatch):
    src, cache = tmp_path / "data.vrs", tmp_path / "work" / stage.SOURCE_HASH_DIR
    src.write_bytes(b"x" * 10_000)
    _age(src)
    reads = _count_reads(monkeypatch)
    first = stage.source_sha256(src, cache)
    assert first == hashlib.sha256(src.read_bytes()).hexdigest()
    assert stage.source_sha256(src, cache) == first
    assert len(reads) == 1  # the second call came from the cache


def test_any_change_is_hashed_again(tmp_path, monkeypatch):
    src, cache = tmp_path / "data.vrs", tmp_path / "work" / stage.SOURCE_HASH_DIR
    src.write_bytes(b"a" * 1000)
    _age(src)
    reads = _count_reads(monkeypatch)
    stage.source_sha256(src, cache)
    assert stage.source_sha256(src, cache) == hashlib.sha256(b"a" * 1000).hexdigest() and len(reads) == 1
    src.write_bytes(b"b" * 1000)  # same size, new content, new mtime
    _age(src, 30.0)
    assert stage.source_sha256(src, cache) == hashlib.sha256(b"b" * 1000).hexdigest()
    tmp = tmp_path / "new.vrs"  # replaced by rename: a new inode with the same size and mtime
    tmp.write_bytes(b"c" * 1000)
    st = src.stat()
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    tmp.replace(src)
    assert stage.source_sha256(src, cache) == hashlib.sha256(b"c" * 1000).hexdigest()
    assert len(reads) == 3


def test_racy_file_and_torn_cache_are_not_trusted(tmp_path, monkeypatch):
    src, cache = tmp_path / "data.vrs", tmp_path / "work" / stage.SOURCE_HASH_DIR
    src.write_bytes(b"y" * 100)  # just written: within RACY_S, never cached
    reads = _count_reads(monkeypatch)
    stage.source_sha256(src, cache)
    stage.source_sha256(src, cache)
    assert len(reads) == 2
    _age(src)
    stage.source_sha256(src, cache)
    for entry in cache.glob("*.json"):
        entry.write_bytes(b"{torn")
    assert stage.source_sha256(src, cache) == hashlib.sha256(b"y" * 100).hexdigest()
    assert len(reads) == 4


def test_small_files_are_always_read(tmp_path):
    src, cache = tmp_path / "motion.npy", tmp_path / "work" / stage.SOURCE_HASH_DIR
    src.write_bytes(b"z" * 100)
    _age(src)
    stage.source_sha256(src, cache)
    assert not cache.exists()  # below MEMO_MIN_BYTES: no memo written into the data root
