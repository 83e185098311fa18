"""Deterministic tar writing and reading (the byte layer of shards and staging files).

Members are written in the given order with mtime 0, uid/gid 0, no user names and mode 0644,
so identical content gives identical bytes.
"""

from __future__ import annotations

import re
import tarfile
from typing import BinaryIO, Iterable, Iterator

SAFE_MEMBER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
BLOCK = 512


def tar_member_bytes(size: int) -> int:
    """Bytes one member takes in a tar: header plus data padded to 512."""
    return BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK


def check_member_name(name: str) -> None:
    """Member names are flat and tame: no directories, no '..', no absolute paths."""
    if not SAFE_MEMBER.match(name) or ".." in name:
        raise ValueError(f"unsafe tar member name {name!r}: expected [A-Za-z0-9_.-] without '..' or '/'")


_HEADER_TEMPLATE: bytearray | None = None


def ustar_header(name: str, size: int) -> bytes:
    """The 512-byte header `write_tar` gives a member (mtime 0, uid/gid 0, no user names, mode 0644):
    byte for byte what `tarfile` writes (tested), built from a template, 20x faster than TarInfo."""
    global _HEADER_TEMPLATE
    check_member_name(name)
    raw = name.encode("ascii")
    if len(raw) > 100 or size >= 8 ** 11:  # beyond USTAR's plain fields: let tarfile decide
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
        return info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape")
    if _HEADER_TEMPLATE is None:
        info = tarfile.TarInfo("x")
        info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0, 0o644, 0, 0, "", ""
        _HEADER_TEMPLATE = bytearray(info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape"))
    h = bytearray(_HEADER_TEMPLATE)
    h[0:100] = raw.ljust(100, b"\0")
    h[124:136] = b"%011o\0" % size
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)  # the checksum field as tarfile writes it
    return bytes(h)


def _padding(size: int, unit: int) -> bytes:
    return b"\0" * (-size % unit)


class TarWriter:
    """Writes the bytes `tarfile` writes for the same members (so shards keep their digests), without
    its per-member copy loop: header, payload, padding; two zero blocks and record padding at the end."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._offset = 0

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._offset += len(data)

    def add(self, name: str, data: bytes) -> None:
        self._write(ustar_header(name, len(data)))
        self._write(data)
        self._write(_padding(len(data), BLOCK))

    @staticmethod
    def tail(offset: int) -> bytes:
        """What ends an archive whose members took `offset` bytes: two zero blocks, record padding."""
        return b"\0" * (2 * BLOCK) + _padding(offset + 2 * BLOCK, tarfile.RECORDSIZE)

    def close(self) -> None:
        self._write(self.tail(self._offset))


def write_tar(f: BinaryIO, members: Iterable[tuple[str, bytes]]) -> None:
    w = TarWriter(f)
    for name, data in members:
        w.add(name, data)
    w.close()


def member_spans(path: str) -> dict[str, tuple[int, int]]:
    """name -> (data offset, size) of each regular member, reading only the headers."""
    with tarfile.open(path, mode="r:") as tar:
        out = {}
        for info in tar:
            check_member_name(info.name)
            if not info.isreg():
                raise ValueError(f"{path}: member {info.name!r} is not a regular file")
            out[info.name] = (info.offset_data, info.size)
        return out


def read_tar(path: str) -> Iterator[tuple[str, bytes]]:
    """Members of a tar in order; refuses anything but flat regular files with safe names."""
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            check_member_name(info.name)
            if not info.isreg():
                raise ValueError(f"{path}: member {info.name!r} is not a regular file")
            fobj = tar.extractfile(info)
            assert fobj is not None
            yield info.name, fobj.read()
