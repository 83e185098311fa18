"""Official .pkl model files convert to .npz without running code (chumpy and scipy stand-ins)."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from ingest.body_model_convert import BodyModelFileError, convert_body_model
from robomirror.safe_pickle import UnsafePickleError
from tests.conftest import run_module


def _fake_chumpy_module():
    """A module named chumpy.ch with a class Ch, so a pickle references it as the real files do."""
    mod = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

        def __getstate__(self):
            return {"x": self.x, "_dirty_vars": set(), "_itr": None}

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    return mod


def _smpl_like(tmp_path, protocol=2):
    mod = _fake_chumpy_module()
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), mod
    try:
        rng = np.random.default_rng(0)
        jreg = scipy.sparse.random(24, 50, density=0.1, format="csc", random_state=1)
        model = {"v_template": rng.normal(size=(50, 3)), "shapedirs": mod.Ch(rng.normal(size=(50, 3, 10))),
                 "posedirs": rng.normal(size=(50, 3, 207)), "J_regressor": jreg, "weights": rng.random((50, 24)),
                 "kintree_table": np.vstack([np.arange(24) - 1, np.arange(24)]), "f": np.zeros((10, 3), np.uint32),
                 "bs_style": "lbs", "pose_training_info": {"nested": 1}}
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        path.write_bytes(pickle.dumps(model, protocol=protocol))
        return path, model, jreg
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.mark.parametrize("protocol", [1, 2])
def test_chumpy_and_sparse_become_arrays(tmp_path, protocol):
    path, model, jreg = _smpl_like(tmp_path, protocol)
    assert "chumpy" not in sys.modules  # the converter never needs (or imports) chumpy
    convert_body_model(path, tmp_path / "smpl" / "SMPL_NEUTRAL.npz")
    with np.load(tmp_path / "smpl" / "SMPL_NEUTRAL.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["shapedirs"], model["shapedirs"].x)
        np.testing.assert_allclose(z["J_regressor"], jreg.toarray())
        np.testing.assert_array_equal(z["v_template"], model["v_template"])
        assert str(z["bs_style"]) == "lbs" and "pose_training_info" not in z.files
    assert "chumpy" not in sys.modules


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(UnsafePickleError):
        convert_body_model(path, tmp_path / "out.npz")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out.npz").exists()


def test_not_a_model_is_explained_and_the_cli_converts(tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"a": np.zeros(3)}, protocol=2))
    with pytest.raises(BodyModelFileError, match="missing"):
        convert_body_model(tmp_path / "x.pkl", tmp_path / "x.npz")
    path, _, _ = _smpl_like(tmp_path)
    out = run_module("ingest", "convert-body-model", str(path), "--out", str(tmp_path / "m" / "SMPL_NEUTRAL.npz"))
    assert out.returncode == 0, out.stderr
    assert "shapedirs (50, 3, 10)" in out.stdout
    bad = run_module("ingest", "convert-body-model", str(tmp_path / "x.pkl"), "--out", str(tmp_path / "y.npz"))
    assert bad.returncode == 2 and "missing" in bad.stderr
