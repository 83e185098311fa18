"""deploy.quantized_check: each export of a student checked against torch in open and closed loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deploy.quantized_check import KINDS, OnnxStudent, check_table, quantized_check
from robomirror.atomic import json_bytes, publish_bytes
from train.env.synthetic import library
from train.student import StudentConfig, build_student


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    torch.manual_seed(0)
    st = build_student(StudentConfig(width=32)).eval()
    with torch.no_grad():  # the AdaLN modulation drawn: zero-initialised, every block would be an identity
        for b in st.blocks:
            torch.nn.init.normal_(b.mod.weight, std=0.5 / 32 ** 0.5)
            torch.nn.init.normal_(b.mod.bias, std=0.1)
    lib = library(2, seconds=0.3)
    d = tmp_path_factory.mktemp("quantized")
    return st, lib, d, quantized_check(st, lib, {"stand": [0], "walk": [1]}, d, iters=5)


def test_every_export_is_measured_against_torch_in_open_and_closed_loop(checked):
    st, lib, d, out = checked
    assert [r["model"] for r in out["rows"]] == ["torch", *KINDS]
    assert out["observations"] == sum(c["steps"] for c in out["rows"][0]["sim2sim"]["clips"]) > 0
    torch_row, fp32, int8, int4 = out["rows"]
    assert torch_row["error"] is None and fp32["error"]["max_action"] <= 1e-5  # float32: torch up to rounding
    assert 0.0 < int8["error"]["max_action"] < 0.1  # quantised: measured, small on a well-scaled student
    assert 0.0 < int4["error"]["mean_action"] and int8["error"]["max_action"] < int4["error"]["max_action"]  # 4 bits < 8
    for r in out["rows"]:
        assert set(r["sim2sim"]) == {"stand", "walk", "clips"} and r["sim2sim"]["stand"]["clips"] == 1
        assert 0.0 < r["latency"]["p50_ms"] <= r["latency"]["p99_ms"]
    # float32 drives the same rollout as torch: the closed loop agrees to rounding
    assert fp32["sim2sim"]["stand"]["mpkpe_m"] == pytest.approx(torch_row["sim2sim"]["stand"]["mpkpe_m"], abs=1e-4)
    assert {p.name for p in d.iterdir()} >= {"policy.onnx", "policy.opt.onnx", "policy.int8.onnx", "policy.int4.onnx"}


def test_the_onnx_policy_acts_like_torch_on_a_batch(checked):
    st, _, d, _ = checked
    obs = np.random.default_rng(0).normal(size=(3, st.cfg.obs_dim)).astype(np.float32)
    got = OnnxStudent(d / "policy.opt.onnx")({"student": torch.from_numpy(obs)})
    with torch.no_grad():
        want = st(torch.from_numpy(obs), torch.zeros((3, 23)))
    assert got.shape == (3, 23) and torch.allclose(got, want, atol=1e-5)


def test_the_report_is_json_and_renders(checked, tmp_path):
    out = checked[3]
    publish_bytes(tmp_path / "q.json", json_bytes(out))
    data = json.loads((tmp_path / "q.json").read_text())
    assert data["format_version"] == 1 and data["clips"] == {"stand": ["sway0"], "walk": ["sway1"]}
    assert {"error", "sim2sim", "latency", "mb", "file"} <= set(data["rows"][1])
    assert check_table(out).row_count == 4


def test_a_run_is_checked_from_its_result_json_through_deploy_bench(tmp_path, monkeypatch):
    from dataclasses import asdict

    import deploy.quantized_check as qc
    from deploy.bench import main
    from robomirror.trainer import save_checkpoint

    cfg = StudentConfig(width=16)
    st = build_student(cfg)
    run = tmp_path / "runs" / "policy" / "learn-x"
    save_checkpoint(run / "student-it7", 2, st, torch.optim.Adam(st.parameters()), {"student_config": asdict(cfg)})
    clips = {"stand": ["sway0"], "walk": ["sway1"]}
    recorded = {"stand": {"succ": 1.0, "mpkpe_m": 0.03}, "walk": {"succ": 0.0, "mpkpe_m": 0.2}}
    publish_bytes(run / "result.json", json_bytes({
        "run_id": "learn-x", "clips": clips, "teacher_selected": {"iteration": 7},
        "student_selected": {"iteration": 2}, "eval": {"sim2sim": {"student": recorded}}}))
    # the store's clips stand in for synthetic ones; everything else is the run's own path
    monkeypatch.setattr(qc, "run_library", lambda layout, c, config=None: (library(2, seconds=0.2), {"stand": [0], "walk": [1]}))
    assert main(["--quantized-closed-loop", "--iters", "3", "--data-root", str(tmp_path)]) == 0  # the newest run
    out = json.loads((run / "quantized_check.json").read_text())
    assert out["run_id"] == "learn-x" and out["student"] == {"teacher_iteration": 7, "dagger_round": 2}
    assert out["recorded_in_result_json"] == recorded and out["width"] == 16
    assert (run / "policy.int8.onnx").is_file() and out["rows"][1]["error"]["max_action"] <= 1e-5
