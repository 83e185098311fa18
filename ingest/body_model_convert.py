"""Convert an official SMPL / SMPL-X `.pkl` model file to the `.npz` the body model loads, once.

The model files users download (smpl.is.tue.mpg.de, smpl-x.is.tue.mpg.de) are Python-2 pickles;
SMPL's hold chumpy objects (`chumpy.ch.Ch` for `shapedirs`, `J`, ...) and a scipy sparse
`J_regressor`. Unpickling them normally imports chumpy and can run code. Here they go through the
project's restricted unpickler: chumpy and scipy-sparse globals are mapped to inert stand-ins that
only record their pickled state, which is then turned into plain numpy arrays (a chumpy array's
value is its `x`; a CSC/CSR matrix is densified from data/indices/indptr). Nothing executes; any
other global is refused. The output loads with `np.load(..., allow_pickle=False)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robomirror.atomic import npz_bytes, publish_bytes
from robomirror.errors import RoboMirrorError
from robomirror.safe_pickle import RestrictedUnpickler, UnsafePickleError

# keys the smplx package reads from a model file (smplx/body_models.py); others are kept if array-like
MODEL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


class BodyModelFileError(RoboMirrorError):
    """A model file is not an SMPL/SMPL-X model the converter understands."""


class _Inert:
    """Stands in for a chumpy / scipy.sparse object: keeps the pickled state, runs nothing."""

    kind = "object"

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __reduce__(self):  # pragma: no cover - never re-pickled
        raise TypeError("inert stand-in")


class _Chumpy(_Inert):
    kind = "chumpy"


class _Sparse(_Inert):
    fmt = "csr"


class _Csc(_Sparse):
    fmt = "csc"


class _Csr(_Sparse):
    fmt = "csr"


class _Coo(_Sparse):
    fmt = "coo"


_SPARSE_CLASS = {"csc_matrix": _Csc, "csr_matrix": _Csr, "coo_matrix": _Coo}


def _reconstructor(cls, base, state):
    """copy_reg._reconstructor (protocol 0/1 pickles), for our stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, _Inert)):
        raise UnsafePickleError(f"refused to reconstruct {cls!r}: only chumpy/scipy-sparse stand-ins")
    return cls.__new__(cls)


_CHUMPY = ("Ch", "Select", "Reorder", "Transpose", "concatenate", "MatVecMult", "Sum")
_SPARSE = [(f"scipy.sparse.{m}", c) for m in ("csc", "csr", "_csc", "_csr", "coo", "_coo")
           for c in ("csc_matrix", "csr_matrix", "coo_matrix")]


class ModelUnpickler(RestrictedUnpickler):
    dispatch = dict(RestrictedUnpickler.dispatch)
    extra = {
        **{("chumpy.ch", n): _Chumpy for n in _CHUMPY},
        **{("chumpy.reordering", n): _Chumpy for n in _CHUMPY},
        **{k: _SPARSE_CLASS[k[1]] for k in _SPARSE},
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("__builtin__", "object"): object,
        ("builtins", "object"): object,
        **{(m, n): t for m in ("__builtin__", "builtins") for n, t in (("set", set), ("frozenset", frozenset))},
    }


def _to_numpy(value: Any, key: str) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, _Chumpy):
        st = value.state if isinstance(value.state, dict) else {}
        if "x" not in st:
            raise BodyModelFileError(f"{key}: a chumpy object without a value 'x' (a derived expression); "
                                     f"state keys {sorted(st)[:8]}")
        return np.asarray(_to_numpy(st["x"], key))
    if isinstance(value, _Sparse):
        st = value.state
        shape = tuple(st.get("_shape") or st.get("shape"))
        fmt = value.fmt
        dense = np.zeros(shape, dtype=np.asarray(st["data"]).dtype)
        if fmt == "coo":
            dense[np.asarray(st["row"]), np.asarray(st["col"])] = st["data"]
            return dense
        indptr, indices, data = (np.asarray(st[k]) for k in ("indptr", "indices", "data"))
        for major in range(len(indptr) - 1):
            sl = slice(indptr[major], indptr[major + 1])
            if fmt == "csc":
                dense[indices[sl], major] = data[sl]
            else:
                dense[major, indices[sl]] = data[sl]
        return dense
    if isinstance(value, (str, bytes)):
        return np.array(value.decode("latin1") if isinstance(value, bytes) else value)
    if isinstance(value, (int, float)):
        return np.array(value)
    return None  # nested dicts (pose_training_info) and the like are not model data


def read_model_pkl(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        try:
            raw = ModelUnpickler(f, encoding="latin1").load()
        except UnsafePickleError:
            raise
        except Exception as e:  # truncated or corrupt
            raise BodyModelFileError(f"{path}: not a readable model pickle: {type(e).__name__}: {e}") from e
    if not isinstance(raw, dict):
        raise BodyModelFileError(f"{path}: expected a dict of model arrays, found {type(raw).__name__}")
    out = {}
    for k, v in raw.items():
        arr = _to_numpy(v, str(k))
        if arr is not None and arr.dtype != object:
            out[str(k)] = arr
    missing = [k for k in MODEL_KEYS if k not in out]
    if missing:
        raise BodyModelFileError(f"{path}: not an SMPL/SMPL-X model: missing {missing}; found {sorted(out)}")
    return out


def convert_body_model(src: Path, dest: Path) -> dict[str, tuple[int, ...]]:
    """Write `dest` (.npz, atomically) from the model pickle `src`; returns key -> shape."""
    arrays = read_model_pkl(Path(src))
    publish_bytes(Path(dest), npz_bytes(arrays))
    return {k: tuple(v.shape) for k, v in sorted(arrays.items())}
