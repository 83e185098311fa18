"""train/export.py: the folded DDIM graph is the student's sampler; the int8 export keeps the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.export import TOLERANCE, FoldedDDIM, export_student, onnx_torch_gap, quantize_int8
from train.student import StudentConfig, build_student


def _student(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    st = build_student(StudentConfig(width=48, blocks=2, **kw)).eval()
    with torch.no_grad():  # the zero-initialised modulation would make every block an identity
        for b in st.blocks:
            torch.nn.init.normal_(b.mod.weight, std=0.2)
            torch.nn.init.normal_(b.mod.bias, std=0.1)
        st.normalizer.mean.normal_()
    return st


@pytest.mark.parametrize("kw", [dict(), dict(prediction="eps"), dict(ddim_steps=4)])
def test_the_folded_ddim_is_the_students_sampler(kw, tmp_path):
    st = _student(**kw)
    obs, noise = torch.randn(8, st.cfg.obs_dim), torch.randn(8, 23)
    with torch.no_grad():
        want = st(obs, noise)
        # eps-prediction with random weights gives actions of ~1e3 (1 / sqrt(alpha_bar) at t = 99 amplifies)
        scale = max(1.0, float(want.abs().max()))
        assert float((FoldedDDIM(st)(obs, noise) - want).abs().max()) <= 1e-5 * scale
    assert onnx_torch_gap(st, export_student(st, tmp_path / "s.onnx", {})) <= TOLERANCE * scale


def test_the_int8_export_keeps_the_metadata_and_its_error_is_measured(tmp_path):
    from deploy.runtime import OnnxPolicy

    st = _student()
    fp32 = export_student(st, tmp_path / "s.onnx", {"vae_id": "v", "vlm_id": "w"})
    q = quantize_int8(fp32, tmp_path / "s.int8.onnx")
    pol = OnnxPolicy(q)  # the runtime's full load-time check: metadata, I/O, a dry run
    assert pol.meta["vae_id"] == "v" and q.stat().st_size < fp32.stat().st_size / 2
    err = onnx_torch_gap(st, q)
    assert np.isfinite(err) and 0.0 < err < 0.5


def test_the_export_is_fixed_at_batch_1_and_its_optimised_copy_is_the_same_policy(tmp_path):
    import onnxruntime as ort

    from deploy.runtime import OnnxPolicy
    from robomirror import g1_contract as g1
    from train.export import action_error, optimized_path

    st = _student()
    path = export_student(st, tmp_path / "s.onnx", {"vae_id": "v", "vlm_id": "w"})
    opt = optimized_path(path)
    assert opt.name == "s.opt.onnx" and opt.is_file()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, st.cfg.obs_dim] and sess.get_outputs()[0].shape == [1, 23]
    pol, pol_opt = OnnxPolicy(path), OnnxPolicy(opt)  # the optimised copy passes the runtime's full load check
    assert pol_opt.meta == pol.meta
    obs, noise = np.random.default_rng(3).normal(size=(2, 1, st.cfg.obs_dim)).astype(np.float32)[0], np.ones((1, 23))
    assert np.abs(pol.act(obs, noise) - pol_opt.act(obs, noise)).max() <= TOLERANCE
    err = action_error(st, opt, n=8)  # a fixed-batch graph is checked row by row
    assert err["samples"] == 8 and err["max_action"] <= TOLERANCE
    assert err["max_rad"] <= err["max_action"] * float(g1.ACTION_SCALE.max()) + 1e-12
    dyn = export_student(st, tmp_path / "d.onnx", {}, batch=None, optimized=False)
    shape = ort.InferenceSession(str(dyn), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    assert isinstance(shape[0], str) and not optimized_path(dyn).exists()
    with pytest.raises(ValueError, match="positive row count"):
        export_student(st, tmp_path / "z.onnx", {}, batch=0)


def test_the_int4_export_keeps_the_contract_and_reports_its_error_in_action_units_and_rad(tmp_path):
    from deploy.runtime import OnnxPolicy
    from train.export import action_error, quantize_int4

    st = _student()
    fp32 = export_student(st, tmp_path / "s.onnx", {"vae_id": "v"}, optimized=False)
    q = quantize_int4(fp32, tmp_path / "s.int4.onnx")
    assert OnnxPolicy(q).meta["vae_id"] == "v" and q.stat().st_size < fp32.stat().st_size / 4
    e4, e8 = action_error(st, q, n=16), action_error(st, quantize_int8(fp32, tmp_path / "s.int8.onnx"), n=16)
    assert 0.0 < e4["mean_action"] <= e4["max_action"] < 1.0 and 0.0 < e4["max_rad"] < e4["max_action"]
    assert e8["max_action"] < e4["max_action"]  # 8 bits per weight are closer to torch than 4
    with pytest.raises(ValueError, match="power of two"):
        quantize_int4(fp32, tmp_path / "x.onnx", block=24)


def test_latency_stats_tell_waiting_from_working():
    import time

    from robomirror.timing import latency_stats

    s = latency_stats(lambda: time.sleep(0.002), n=5, warmup=1)
    assert s["p50_ms"] >= 2.0 and s["cpu_p50_ms"] < 1.0 and s["calls"] == 5
    with pytest.raises(ValueError, match="at least one"):
        latency_stats(lambda: None, n=0)
