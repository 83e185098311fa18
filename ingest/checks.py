"""Validation of source arrays and tables at the reader boundary.

Each check raises `SourceError` with a typed reason and says what was expected and found.
"""

from __future__ import annotations

import numpy as np

from ingest.failures import Reason
from robomirror.errors import SourceError


def check_array(arr: np.ndarray, path: str, name: str, width: tuple[int, ...] | None = None,
                kind: str = "float") -> np.ndarray:
    """Check dtype kind, trailing shape, frame count and finiteness; returns float64 / int64."""
    arr = np.asarray(arr)
    ok_kinds = {"float": "f", "int": "iu", "number": "fiu"}[kind]
    if arr.dtype.kind not in ok_kinds:
        raise SourceError(Reason.BAD_DTYPE, path,
                          f"{name}: expected a {kind} array, found dtype {arr.dtype}")
    if width is not None and (arr.ndim != 1 + len(width) or tuple(arr.shape[1:]) != width):
        raise SourceError(Reason.BAD_SHAPE, path,
                          f"{name}: expected shape (T, {', '.join(map(str, width))}), found {arr.shape}")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise SourceError(Reason.EMPTY, path, f"{name}: has zero frames")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr.reshape(arr.shape[0], -1)))[0][0]
        raise SourceError(Reason.NON_FINITE, path, f"{name}: NaN or inf, first at frame {bad}")
    return arr.astype(np.int64 if kind == "int" else np.float64)


def check_increasing(t: np.ndarray, path: str, name: str) -> None:
    d = np.diff(t)
    if np.any(d <= 0):
        i = int(np.argmax(d <= 0))
        raise SourceError(Reason.NON_MONOTONIC_TIME, path,
                          f"{name}: timestamps must strictly increase; frame {i + 1} ({t[i + 1]}) "
                          f"is not after frame {i} ({t[i]})")


def check_same_length(path: str, **arrays: np.ndarray) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise SourceError(Reason.BAD_SHAPE, path, f"arrays disagree on frame count: {lengths}")
    return next(iter(lengths.values()))


def load_npy(path: str) -> np.ndarray:
    """np.load without pickle; turns read errors into typed source errors."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise SourceError(Reason.MISSING_FILE, path, "file not found") from e
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise SourceError(Reason.BAD_DTYPE, path, "object array (would need pickle); refused") from e
        raise SourceError(Reason.BAD_SHAPE, path, f"not a valid .npy/.npz file: {e}") from e
    except (OSError, EOFError) as e:
        raise SourceError(Reason.BAD_SHAPE, path, f"not a valid .npy/.npz file: {e}") from e
