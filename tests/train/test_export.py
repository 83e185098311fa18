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
