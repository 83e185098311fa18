"""Imported robot motions are validated after unpickling: bad values get one clear error."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest

from retarget.interop import InteropError, import_file
from robomirror.safe_pickle import UnsafePickleError, safe_load
from tests.conftest import run_module


def _gmr(n=20, **over):
    q = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))  # xyzw identity
    d = {"fps": 30.0, "root_pos": np.tile([0.0, 0.0, 0.8], (n, 1)), "root_rot": q, "dof_pos": np.zeros((n, 23))}
    d.update(over)
    return d


def _write(tmp_path, d, protocol=4):
    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps(d, protocol=protocol))
    return p


BAD = {
    "negative fps": dict(fps=-30.0),
    "zero fps": dict(fps=0.0),
    "nan fps": dict(fps=float("nan")),
    "zero frames": dict(root_pos=np.zeros((0, 3)), root_rot=np.zeros((0, 4)), dof_pos=np.zeros((0, 23))),
    "huge joints": dict(dof_pos=np.full((20, 23), 1e6)),
    "zero quaternions": dict(root_rot=np.zeros((20, 4))),
    "nan positions": dict(root_pos=np.full((20, 3), np.nan)),
    "length mismatch": dict(dof_pos=np.zeros((19, 23))),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_are_refused_with_a_reason(tmp_path, case):
    with pytest.raises(InteropError) as e:
        import_file(_write(tmp_path, _gmr(**BAD[case])), "gmr")
    assert "not a valid G1 motion" in str(e.value) or "not a gmr motion" in str(e.value)


def test_a_good_motion_passes_and_the_cli_explains_a_wrong_format(tmp_path):
    m = import_file(_write(tmp_path, _gmr()), "gmr")
    assert m.n_frames == 20
    out = run_module("retarget", "import", str(_write(tmp_path, _gmr())), "--format", "pbhc", "--out",
                     str(tmp_path / "o.npz"))
    assert out.returncode == 2 and "not a pbhc motion" in out.stderr and "Traceback" not in out.stderr
    out = run_module("retarget", "import", str(_write(tmp_path, _gmr(fps=0.0))), "--format", "gmr", "--out",
                     str(tmp_path / "o.npz"))
    assert out.returncode == 2 and "fps must be" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, protocol):
    d = _gmr()
    loaded = safe_load(_write(tmp_path, d, protocol))
    np.testing.assert_array_equal(loaded["dof_pos"], d["dof_pos"])


def test_a_pickle_that_would_allocate_too_much_is_refused(tmp_path):
    mod = types.ModuleType("joblib.numpy_pickle")

    class NumpyArrayWrapper:
        def __init__(self):
            self.dtype, self.shape, self.order, self.numpy_array_alignment_bytes = np.dtype("f8"), (10**12,), "C", None

    NumpyArrayWrapper.__module__, NumpyArrayWrapper.__qualname__ = "joblib.numpy_pickle", "NumpyArrayWrapper"
    mod.NumpyArrayWrapper = NumpyArrayWrapper
    saved = {k: sys.modules.get(k) for k in ("joblib", "joblib.numpy_pickle")}
    sys.modules["joblib"], sys.modules["joblib.numpy_pickle"] = types.ModuleType("joblib"), mod
    try:
        data = pickle.dumps({"dof_pos": NumpyArrayWrapper()}, protocol=4)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    (tmp_path / "big.pkl").write_bytes(data)
    with pytest.raises(UnsafePickleError, match="bytes"):
        safe_load(tmp_path / "big.pkl")
