"""The tar byte layer: our writer gives tarfile's exact bytes; the range reader finds every member."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from robomirror.tario import member_spans, read_tar, write_tar


def _tarfile_bytes(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = \
                len(data), 0, 0o644, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("sizes", [[], [0], [1, 511, 512, 513], [10240, 3, 20479], list(range(0, 3000, 97))])
def test_writer_bytes_equal_tarfile_and_spans_find_every_member(sizes, tmp_path):
    rng = np.random.default_rng(len(sizes))
    members = [(f"{'a' * 64}-{i}.video.mp4", rng.bytes(n)) for i, n in enumerate(sizes)]
    buf = io.BytesIO()
    write_tar(buf, members)
    assert buf.getvalue() == _tarfile_bytes(members)
    path = tmp_path / "x.tar"
    path.write_bytes(buf.getvalue())
    assert list(read_tar(str(path))) == members
    spans = member_spans(str(path))
    data = path.read_bytes()
    assert {n: data[o:o + s] for n, (o, s) in spans.items()} == dict(members)


@pytest.mark.parametrize("name,size", [("a" * 64 + ".video.mp4", 12345), ("x.meta.json", 0), ("k" * 99, 8 ** 10),
                                       ("k" * 100, 3)])
def test_the_fast_header_is_tarfiles_header(name, size):
    import tarfile

    from robomirror.tario import ustar_header

    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
    assert ustar_header(name, size) == info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape")
