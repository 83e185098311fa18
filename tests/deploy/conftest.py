from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_policy(tmp_path_factory):
    """A tiny exported student (random weights: plumbing only) with the contract's metadata."""
    from train.export import export_student
    from train.student import StudentConfig, build_student

    path = tmp_path_factory.mktemp("policy") / "policy.onnx"
    return export_student(build_student(StudentConfig(width=32, blocks=1)), path, {"vae_id": "vae-A", "vlm_id": "vlm-A"})
