"""The restricted unpickler bounds memory and time before it builds anything: a few hundred bytes that
expand to gigabytes are refused at once; every declared length must fit in the file."""

from __future__ import annotations

import pickle
import struct
import time

import numpy as np
import pytest

from robomirror.safe_pickle import MAX_ELEMENTS, UnsafePickleError, safe_load
from tests.conftest import run_module


def _bomb(levels: int = 9, width: int = 10, leaf: bytes = pickle.BINFLOAT + struct.pack(">d", 1.0)) -> bytes:
    """`levels` nested lists, each holding the previous one `width` times by memo reference: ~2 bytes per
    reference in the file, width**levels floats once numpy converts it (10**9 here: 8 GB)."""
    out = [leaf, pickle.BINPUT + b"\x00", pickle.POP]
    for i in range(levels):
        out += [pickle.EMPTY_LIST, pickle.BINPUT + bytes([i + 1]), pickle.MARK,
                *[pickle.BINGET + bytes([i])] * width, pickle.APPENDS, pickle.POP]
    return b"".join(out) + pickle.BINGET + bytes([levels])


def _gmr_with(dof_pos: bytes) -> bytes:
    """A GMR-like dict whose dof_pos is the given pickle fragment."""
    head = pickle.dumps({"fps": 30.0}, protocol=2)
    assert head.endswith(b"s.")  # ...SETITEM STOP: reopen the dict and add one key
    return head[:-1] + pickle.BINUNICODE + struct.pack("<I", 7) + b"dof_pos" + dof_pos + \
        pickle.SETITEM + pickle.STOP


def test_a_330_byte_bomb_is_refused_in_well_under_a_second(tmp_path):
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.PROTO + b"\x02" + _bomb() + pickle.STOP)
    assert len(path.read_bytes()) < 330
    t0 = time.perf_counter()
    with pytest.raises(UnsafePickleError, match="expands far beyond its file"):
        safe_load(path)
    assert time.perf_counter() - t0 < 0.5


def test_the_cli_refuses_a_bomb_inside_a_motion(tmp_path):
    path = tmp_path / "bomb_gmr.pkl"
    path.write_bytes(_gmr_with(_bomb(levels=3, width=10)))  # first a small one: the fragment reads as a list
    assert np.asarray(safe_load(path)["dof_pos"]).shape == (10, 10, 10)
    path.write_bytes(_gmr_with(_bomb()))
    assert len(path.read_bytes()) <= 330
    t0 = time.perf_counter()
    out = run_module("retarget", "import", str(path), "--format", "gmr", "--out", str(tmp_path / "o.npz"))
    assert out.returncode == 2 and "expands far beyond its file" in out.stderr and "Traceback" not in out.stderr
    assert time.perf_counter() - t0 < 30  # interpreter start and imports; the refusal itself is instant
    assert not (tmp_path / "o.npz").exists()


def _tuple_bomb(levels: int = 30) -> bytes:
    """Tuples of 2 references to the previous one, used as a dict key: hashing it walks 2**30 leaves."""
    out = [pickle.BININT1 + b"\x01", pickle.BINPUT + b"\x00"]
    for i in range(levels):
        out += [pickle.BINGET + bytes([i]), pickle.BINGET + bytes([i]), pickle.TUPLE2, pickle.BINPUT + bytes([i + 1])]
    return b"".join(out)


CASES = {
    "hash bomb as a dict key": pickle.EMPTY_DICT + _tuple_bomb() + pickle.NONE + pickle.SETITEM,
    "string longer than the file": pickle.BINUNICODE8 + struct.pack("<Q", 1 << 40) + b"x",
    "bytes longer than the file": pickle.BINBYTES8 + struct.pack("<Q", 1 << 40) + b"x",
    "bytearray longer than the file": pickle.BYTEARRAY8 + struct.pack("<Q", 1 << 40) + b"x",
    "frame longer than the file": pickle.FRAME + struct.pack("<Q", 1 << 40),
    "_reconstruct of 8 GB": (pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n" + pickle.GLOBAL
                             + b"numpy\nndarray\n" + pickle.BININT + struct.pack("<i", 1 << 30) + pickle.TUPLE1
                             + pickle.SHORT_BINBYTES + b"\x01d" + pickle.TUPLE3 + pickle.REDUCE),
    "ndarray of 8 GB": (pickle.GLOBAL + b"numpy\nndarray\n" + pickle.BININT + struct.pack("<i", 1 << 30)
                        + pickle.TUPLE1 + pickle.TUPLE1 + pickle.REDUCE),
    "ndarray.__new__ of 8 GB": (pickle.GLOBAL + b"numpy\nndarray\n" + pickle.BININT + struct.pack("<i", 1 << 30)
                                + pickle.TUPLE1 + pickle.TUPLE1 + pickle.NEWOBJ),
    "a list grown after it was shared": (pickle.EMPTY_LIST + pickle.BINPUT + b"\x00" + pickle.EMPTY_LIST
                                         + pickle.BINGET + b"\x00" + pickle.APPEND + pickle.BINGET + b"\x00"
                                         + pickle.NONE + pickle.APPEND),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_expansion_is_refused_before_it_allocates(tmp_path, case):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.PROTO + b"\x04" + CASES[case] + pickle.STOP)
    t0 = time.perf_counter()
    with pytest.raises(UnsafePickleError) as e:
        safe_load(path)
    assert time.perf_counter() - t0 < 0.5, case
    assert any(w in str(e.value) for w in ("left in the file", "left", "elements", "grows after")), str(e.value)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_large_legitimate_pickles_still_load(tmp_path, protocol):
    """Real files are arrays (bounded by their bytes) and modest lists: far inside the caps."""
    rng = np.random.default_rng(0)
    d = {"fps": 30.0, "dof_pos": rng.normal(size=(20_000, 29)).astype(np.float32),
         "root_pos": rng.normal(size=(20_000, 3)), "contact_mask": rng.random((20_000, 2)) > 0.5,
         "link_body_list": [f"link_{i}" for i in range(40)], "nested": [[0.0] * 100] * 100,
         "shared": [np.arange(5)] * 50}
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    back = safe_load(path)
    assert np.array_equal(back["dof_pos"], d["dof_pos"]) and back["link_body_list"] == d["link_body_list"]
    assert np.asarray(back["nested"]).shape == (100, 100) and len(back["shared"]) == 50
    assert MAX_ELEMENTS >= 1 << 24
