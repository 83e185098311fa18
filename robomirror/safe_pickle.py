"""A restricted unpickler for motion pickles (PHC/PBHC, GMR; plain or joblib).

It admits only what motion files contain: dicts, lists, tuples, strings, numbers, numpy arrays and
dtypes (including joblib's NumpyArrayWrapper, whose raw array bytes follow it in the stream).
Any other global — the way a pickle runs code — is refused before it is touched.

Memory and time are bounded before anything is built, so a few hundred bytes cannot expand into
gigabytes (a "pickle bomb": a list holding the same list many times, nested, costs 2 bytes per
reference in the file but its full size once numpy converts it):
- every length the stream declares (a string, bytes, a frame, an array to allocate) must fit in the
  bytes left in the file, checked before the read or allocation;
- every list, tuple, dict and set carries its logical size (elements, counting a shared one each time
  it is referenced, an array as its element count); one past `max_elements` is refused when it is
  formed, before it is hashed or converted (the cap is `MAX_ELEMENTS`, or the file's size in bytes if
  larger: a real file needs at least one byte per element);
- a container cannot grow after it was put inside another (a pickler never does that; it would let a
  parent's size be counted before its child's).
So loading is linear in the file's size, and whatever it returns converts with numpy in bounded memory.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from robomirror.errors import RoboMirrorError


class UnsafePickleError(RoboMirrorError):
    """The pickle names a global outside the allow-list."""


MAX_ELEMENTS = 1 << 24  # logical elements in one object (16.8 M; the file's size in bytes if larger)


class _BoundedReader:
    """A file whose reads must fit in what is left of it: a declared length is checked before the read
    allocates (io's read(n) reserves n bytes first)."""

    def __init__(self, f) -> None:
        self._f = f
        try:
            self.size = os.fstat(f.fileno()).st_size
        except (OSError, AttributeError, io.UnsupportedOperation):
            self.size = f.tell() + _bytes_left(f)

    def left(self) -> int:
        return self.size - self._f.tell()

    def read(self, n: int = -1) -> bytes:
        if n is not None and n > self.left():
            raise UnsafePickleError(f"the pickle declares {n} bytes at offset {self._f.tell()}, but only "
                                    f"{self.left()} are left in the file")
        return self._f.read(n)

    def readinto(self, buf) -> int:
        if len(buf) > self.left():
            self.read(len(buf))  # raises, naming the sizes
        return self._f.readinto(buf)

    def readline(self) -> bytes:
        return self._f.readline()

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, *args) -> int:
        return self._f.seek(*args)


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


_MUTABLE = (list, dict, set)
_ALLOCATORS = {np.ndarray, np._core.multiarray._reconstruct}


def _n_bytes(func, args: tuple) -> int:
    """Bytes np.ndarray(shape, dtype) or _reconstruct(cls, shape, dtype) would allocate."""
    shape, dtype = (args[0], args[1] if len(args) > 1 else float) if func is np.ndarray else (args[1], args[2])
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise UnsafePickleError(f"refused an array of shape {shape}")
    return math.prod(shape) * np.dtype(dtype).itemsize


class RestrictedUnpickler(pickle._Unpickler):  # the pure-Python one, so every opcode can be intercepted
    dispatch = dict(pickle._Unpickler.dispatch)

    extra: dict[tuple[str, str], Any] = {}  # globals a subclass admits on top of ALLOWED
    max_elements: int = MAX_ELEMENTS

    def __init__(self, stream: io.BufferedReader, **kw) -> None:
        stream = stream if isinstance(stream, _BoundedReader) else _BoundedReader(stream)
        super().__init__(stream, **kw)
        self._stream = stream
        self._cap = max(self.max_elements, stream.size)
        self._sizes: dict[int, tuple[Any, int]] = {}  # id -> (the object, kept alive; its logical size)
        self._sealed: set[int] = set()  # mutable containers already inside another

    # ---- logical sizes: the guard against expansion

    def _size(self, obj: Any) -> int:
        if isinstance(obj, np.ndarray):  # its size now (BUILD fills an empty array in place)
            return obj.size
        hit = self._sizes.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        return obj.size if isinstance(obj, np.ndarray) else 1

    def _record(self, obj: Any, size: int) -> None:
        if size > self._cap:
            raise UnsafePickleError(
                f"refused a {type(obj).__name__} of {size:,} elements (shared references counted each time; "
                f"at most {self._cap:,}): a pickle that expands far beyond its file, nothing was built from it")
        if not isinstance(obj, np.ndarray) and (isinstance(obj, (list, tuple, dict, set, frozenset)) or size > 1):
            self._sizes[id(obj)] = (obj, size)

    def _adopt(self, items) -> int:
        """Sum the logical sizes of `items` going into a container, and seal the mutable ones."""
        total = 0
        for it in items:
            total += self._size(it)
            if isinstance(it, _MUTABLE):
                self._sealed.add(id(it))
            if total > self._cap:
                break
        return total

    def _grow(self, target: Any, items) -> None:
        if id(target) in self._sealed and isinstance(target, _MUTABLE):
            raise UnsafePickleError("refused a container that grows after it was put inside another (no pickler "
                                    "writes that; it would hide a container's size from its parent)")
        self._record(target, self._size(target) + self._adopt(items))

    def _left(self) -> int:
        frame = self._unframer.current_frame if hasattr(self, "_unframer") else None
        in_frame = frame.getbuffer().nbytes - frame.tell() if frame is not None else 0
        return self._stream.left() + in_frame

    def _check_call(self, func, args) -> None:
        if any(func is a for a in _ALLOCATORS) or (isinstance(func, type) and issubclass(func, np.ndarray)):
            try:
                n = _n_bytes(np.ndarray if func is not np._core.multiarray._reconstruct else func, tuple(args))
            except (TypeError, ValueError, IndexError) as e:
                raise UnsafePickleError(f"refused an array constructor call with {args!r:.80}: {e}") from None
            if n > self._left():
                raise UnsafePickleError(f"refused an array of {n:,} bytes: only {self._left():,} are left in the file "
                                        "to fill it")

    def _instantiate(self, klass, args) -> None:
        self._check_call(klass, args)
        size = self._adopt(args)
        super()._instantiate(klass, args)
        self._record(self.stack[-1], size + self._size(self.stack[-1]))

    def _load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self._left():
            raise UnsafePickleError(f"the pickle declares a bytearray of {n} bytes; only {self._left()} are left")
        b = bytearray(n)
        self.readinto(b)
        self.append(b)

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8

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


def _marked(self) -> list:  # the items a MARK-based opcode is about to consume
    return self.stack


def _guard_new(op: bytes, items) -> None:
    """An opcode that forms a new object from `items(self)`: its size is recorded (and capped) after."""
    original = RestrictedUnpickler.dispatch[op[0]]

    def run(self) -> None:
        size = self._adopt(items(self))
        original(self)
        self._record(self.stack[-1], size + (self.stack[-1].size if isinstance(self.stack[-1], np.ndarray) else 0))
    RestrictedUnpickler.dispatch[op[0]] = run


def _guard_grow(op: bytes, target, items) -> None:
    """An opcode that adds `items(self)` to `target(self)` (checked before the target changes)."""
    original = RestrictedUnpickler.dispatch[op[0]]

    def run(self) -> None:
        self._grow(target(self), items(self))
        original(self)
    RestrictedUnpickler.dispatch[op[0]] = run


def _guard_call(op: bytes, func, args) -> None:
    """REDUCE / NEWOBJ(_EX): an allocating constructor is checked against the bytes left first."""
    original = RestrictedUnpickler.dispatch[op[0]]

    def run(self) -> None:
        self._check_call(func(self), args(self))
        size = self._adopt(args(self))
        original(self)
        out = self.stack[-1]
        self._record(out, max(size, out.size if isinstance(out, np.ndarray) else 1))
    RestrictedUnpickler.dispatch[op[0]] = run


for _op in (pickle.TUPLE, pickle.LIST, pickle.DICT, pickle.FROZENSET):
    _guard_new(_op, _marked)
for _op, _n in ((pickle.TUPLE1, 1), (pickle.TUPLE2, 2), (pickle.TUPLE3, 3)):
    _guard_new(_op, lambda self, n=_n: self.stack[-n:])
for _op in (pickle.APPENDS, pickle.SETITEMS, pickle.ADDITEMS):
    _guard_grow(_op, lambda self: self.metastack[-1][-1], _marked)
_guard_grow(pickle.APPEND, lambda self: self.stack[-2], lambda self: self.stack[-1:])
_guard_grow(pickle.SETITEM, lambda self: self.stack[-3], lambda self: self.stack[-2:])
_guard_call(pickle.REDUCE, lambda self: self.stack[-2], lambda self: self.stack[-1])
_guard_call(pickle.NEWOBJ, lambda self: self.stack[-2], lambda self: self.stack[-1])
_guard_call(pickle.NEWOBJ_EX, lambda self: self.stack[-3], lambda self: (*self.stack[-2], *self.stack[-1].values()))


def safe_load(path: str | Path) -> Any:
    """Load a motion pickle with the allow-list; raises UnsafePickleError on anything else."""
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, encoding="latin1").load()  # latin1: numpy arrays from py2 pickles
        except UnsafePickleError:
            raise
        except Exception as e:  # truncated or corrupt stream
            raise UnsafePickleError(f"{path}: not a readable motion pickle: {type(e).__name__}: {e}") from e
