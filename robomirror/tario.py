"""Deterministic tar writing and reading (the byte layer of shards and staging files).

Members are written in the given order with mtime 0, uid/gid 0, no user names and mode 0644,
so identical content gives identical bytes.
"""

from __future__ import annotations

import io
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


def write_tar(f: BinaryIO, members: Iterable[tuple[str, bytes]]) -> None:
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            check_member_name(name)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))


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
