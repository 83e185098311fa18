"""A restricted unpickler for motion pickles (PHC/PBHC, GMR; plain or joblib).

It admits only what motion files contain: dicts, lists, tuples, strings, numbers, numpy arrays and
dtypes (including joblib's NumpyArrayWrapper, whose raw array bytes follow it in the stream).
Any other global — the way a pickle runs code — is refused before it is touched.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from robomirror.errors import RoboMirrorError


class UnsafePickleError(RoboMirrorError):
    """The pickle names a global outside the allow-list."""


class _ArrayWrapper:
    """Stands in for joblib.numpy_pickle.NumpyArrayWrapper; state is set by BUILD."""

    def read(self, stream: io.BufferedReader) -> np.ndarray:
        st = self.__dict__
        dtype = np.dtype(st["dtype"])
        if dtype.hasobject:
            raise UnsafePickleError("joblib array of dtype object: loading it would unpickle arbitrary objects")
        if st.get("numpy_array_alignment_bytes") is not None:
            pad = stream.read(1)
            if pad:
                stream.read(int.from_bytes(pad, "little"))
        shape = tuple(st["shape"])
        count = int(np.prod(shape, dtype=object)) if shape else 1
        left = _bytes_left(stream)
        if count * dtype.itemsize > left:  # a size bound before any allocation
            raise UnsafePickleError(f"joblib array of shape {shape} needs {count * dtype.itemsize} bytes; "
                                    f"only {left} are left in the file")
        data = stream.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise UnsafePickleError(f"joblib array truncated: expected {count * dtype.itemsize} bytes, got {len(data)}")
        arr = np.frombuffer(data, dtype=dtype).copy()
        return arr.reshape(shape, order=st.get("order", "C"))


def _bytes_left(stream) -> int:
    try:
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
        return end - here
    except (OSError, AttributeError):
        return 1 << 62


def latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as numpy arrays pickled with protocols 0-2 use it (str -> bytes); nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


def _frombuffer(buf, dtype, shape, order):
    """numpy's protocol-5 array constructor (bytes -> array); object dtypes refused."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise UnsafePickleError("array of dtype object: loading it would unpickle arbitrary objects")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): np._core.multiarray._reconstruct for m in _NUMPY_CORE},
    **{(m, "scalar"): np._core.multiarray.scalar for m in _NUMPY_CORE},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "float32"): np.float32, ("numpy", "float64"): np.float64, ("numpy", "int64"): np.int64,
    ("numpy", "int32"): np.int32,
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): _ArrayWrapper,
    ("collections", "OrderedDict"): dict,
    ("_codecs", "encode"): latin1_bytes,
    **{(m, "_frombuffer"): _frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},  # protocols 0 and 2 carry numpy's raw bytes through it
}


class RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one, so BUILD can be intercepted
    dispatch = dict(pickle._Unpickler.dispatch)

    extra: dict[tuple[str, str], Any] = {}  # globals a subclass admits on top of ALLOWED

    def __init__(self, stream: io.BufferedReader, **kw) -> None:
        super().__init__(stream, **kw)
        self._stream = stream

    def find_class(self, module: str, name: str):
        try:
            return self.extra.get((module, name)) or ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused global {module}.{name}: motion pickles may only hold numpy arrays, dicts, lists, "
                "tuples and scalars (nothing was executed)") from None

    def _load_build(self) -> None:
        pickle._Unpickler.load_build(self)
        obj = self.stack[-1]
        if isinstance(obj, _ArrayWrapper):
            self.stack[-1] = obj.read(self._stream)

    dispatch[pickle.BUILD[0]] = _load_build


def safe_load(path: str | Path) -> Any:
    """Load a motion pickle with the allow-list; raises UnsafePickleError on anything else."""
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding="latin1").load()  # latin1: numpy arrays from py2 pickles
        except UnsafePickleError:
            raise
        except Exception as e:  # truncated or corrupt stream
            raise UnsafePickleError(f"{path}: not a readable motion pickle: {type(e).__name__}: {e}") from e
