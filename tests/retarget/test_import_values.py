"""`retarget import` (gmr, pbhc) validates value ranges and types, not only shapes and finiteness: every
garbage value below once passed (or ended in a traceback); now each gets one clear error and exit 2."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from retarget.interop import FPS_RANGE_HZ, ROOT_POS_BOUND_M, InteropError, import_file
from retarget.stability import StabilityConfig, verdict
from tests.conftest import run_module

N = 20


def _motion(**over) -> dict:
    d = {"fps": 30.0, "root_pos": np.tile([0.0, 0.0, 0.8], (N, 1)), "root_rot": np.tile([0.0, 0.0, 0.0, 1.0], (N, 1)),
         "dof_pos": np.zeros((N, 23))}
    d.update(over)
    return d


def _write(tmp_path, fmt: str, d: dict):
    """The same motion as a GMR dict or a PBHC {name: motion} pickle."""
    if fmt == "pbhc":
        d = {"m": {"fps": d["fps"], "root_trans_offset": d["root_pos"], "root_rot": d["root_rot"], "dof": d["dof_pos"]}}
    p = tmp_path / f"{fmt}.pkl"
    p.write_bytes(pickle.dumps(d, protocol=4))
    return p


BAD = {  # case -> (override, words in the message)
    "fps 1e12": (dict(fps=1e12), f"within [{FPS_RANGE_HZ[0]:g}, {FPS_RANGE_HZ[1]:g}] Hz"),
    "fps 0.01": (dict(fps=0.01), "within"),
    "fps True": (dict(fps=True), "fps must be a real number, got bool"),
    "fps np.bool_": (dict(fps=np.bool_(True)), "fps must be a real number"),
    "fps a string": (dict(fps="30"), "fps must be a real number, got str"),
    "fps an array": (dict(fps=np.array([30.0, 30.0])), "fps must be a real number"),
    "complex joints": (dict(dof_pos=np.zeros((N, 23)) + 0.1j), "is complex"),
    "complex root": (dict(root_pos=np.tile([0.0, 0.0, 0.8 + 1j], (N, 1))), "root"),
    "string joints": (dict(dof_pos=np.full((N, 23), "a")), "must hold real numbers"),
    "root 10 km up": (dict(root_pos=np.tile([0.0, 0.0, 10_000.0], (N, 1))), f"at most {ROOT_POS_BOUND_M:g} m"),
    "joints (T, 23, 1)": (dict(dof_pos=np.zeros((N, 23, 1))), "has shape (20, 23, 1), expected (T, 23) or (T, 29)"),
    "joints (T,)": (dict(dof_pos=np.zeros(N)), "expected (T, 23) or (T, 29)"),
    "root (T, 3, 1)": (dict(root_pos=np.zeros((N, 3, 1))), "expected (T, 3)"),
}


@pytest.mark.parametrize("fmt", ["gmr", "pbhc"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_garbage_values_are_refused_with_a_reason(tmp_path, fmt, case):
    over, words = BAD[case]
    with pytest.raises(InteropError) as e:
        import_file(_write(tmp_path, fmt, _motion(**over)), fmt)
    assert words in str(e.value), str(e.value)


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(InteropError) as e:
        import_file(_write(tmp_path, "gmr", _motion(fps=True, dof_pos=np.zeros((N, 23)) + 1j)), "gmr")
    assert "got bool" in str(e.value) and "is complex" in str(e.value)


@pytest.mark.parametrize("fps", [30, np.float64(29.97), np.int64(50), np.array(120.0), 1.0, 1000.0])
def test_plausible_rates_of_any_real_type_pass(tmp_path, fps):
    m = import_file(_write(tmp_path, "gmr", _motion(fps=fps)), "gmr")
    assert m.fps == round(float(fps)) and m.n_frames >= 1


def test_a_nan_stability_metric_is_never_a_pass():
    cfg = StabilityConfig()
    assert verdict(np.zeros(10), cfg).passed
    for dd in (np.full(10, np.nan), np.r_[np.zeros(5), np.nan, np.zeros(4)], np.r_[np.zeros(9), np.inf]):
        v = verdict(dd, cfg)
        assert not v.passed and v.reason == "non_finite_metric"


@pytest.mark.parametrize("case", ["fps 1e12", "fps True", "complex joints", "root 10 km up", "joints (T, 23, 1)"])
def test_the_cli_refuses_with_exit_2_and_writes_nothing(tmp_path, case):
    over, words = BAD[case]
    out_path = tmp_path / "o.npz"
    out = run_module("retarget", "import", str(_write(tmp_path, "gmr", _motion(**over))), "--format", "gmr",
                     "--out", str(out_path))
    assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not out_path.exists()


def test_feet_far_above_the_floor_are_unstable_not_ok(tmp_path):
    """90 m up (inside the bound): no foot weighs anything, CoM-CoP is 0/0; the verdict says so."""
    out = run_module("retarget", "import", str(_write(tmp_path, "gmr", _motion(root_pos=np.tile([0, 0, 90.0], (N, 1))))),
                     "--format", "gmr", "--out", str(tmp_path / "o.npz"))
    assert out.returncode == 0, out.stderr
    assert "UNSTABLE (non_finite_metric)" in out.stdout and "stable (ok)" not in out.stdout
