"""The height map as an optional, named slice of the G1 contract (issue 22): off by default, the layouts
(and so every exported policy's metadata) are byte-identical to those before it existed; on, it is the
last slice of the teacher's and the student's observations, the ONNX metadata names it, and the robot
runtime, which has no height source, refuses such a policy by the slice's name."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest

from deploy.runtime import DeployError, OnnxPolicy
from retarget import scene_ground
from robomirror import g1_contract as g1
from train.export import contract_metadata, export_student
from train.student import StudentConfig, build_student

# sha256 of json.dumps(layout.as_json()) as the contract wrote them before the height map existed: every
# ONNX policy exported until then carries these in its obs_layout metadata, which the runtime compares.
LAYOUT_SHA256 = {
    "teacher": "4ed6f7753375ff771d164d885031c66e747f7c2a2e329f7ad9b772dddebc2e24",
    "student_256": "d5cdae122cf908141c1be357f5efe09bfab25c314e844d04793e1f5d70953fa0",
    "student_128": "5166b088962cf54e9865491294c7895bc1efd0a46a17331c00122b37aa1d3740",
}


def _sha(layout: g1.ObsLayout) -> str:
    return hashlib.sha256(json.dumps(layout.as_json()).encode()).hexdigest()


def test_off_by_default_the_layouts_are_byte_identical_to_before():
    assert _sha(g1.TEACHER_OBS) == _sha(g1.teacher_obs()) == LAYOUT_SHA256["teacher"]
    assert _sha(g1.STUDENT_OBS) == _sha(g1.student_obs(256)) == LAYOUT_SHA256["student_256"]
    assert _sha(g1.student_obs(128)) == LAYOUT_SHA256["student_128"]
    assert json.loads(contract_metadata(256, {})["obs_layout"]) == g1.STUDENT_OBS.as_json()
    assert not g1.has_height_map(g1.TEACHER_OBS) and not g1.has_height_map(g1.STUDENT_OBS.as_json())
    assert StudentConfig().obs_dim == 2206


@pytest.mark.parametrize("make", [g1.teacher_obs, lambda hm: g1.student_obs(256, hm)])
def test_on_the_height_map_is_the_last_slice_and_every_other_slice_keeps_its_place(make):
    off, on = make(False), make(True)
    assert on.terms[:-1] == off.terms and on.terms[-1] == (g1.HEIGHT_MAP_TERM, 121)
    assert on.slices()[g1.HEIGHT_MAP_TERM] == slice(off.dim, off.dim + 121) and on.dim == off.dim + 121
    assert g1.has_height_map(on) and g1.has_height_map(on.as_json())


def test_the_contracts_grid_is_the_stores():
    """The env's slice and the store's height_map.npz are one grid: same size and spacing."""
    assert (g1.HEIGHT_MAP_N, g1.HEIGHT_MAP_CELL_M) == (scene_ground.HEIGHT_MAP_N, scene_ground.HEIGHT_MAP_CELL_M)
    off = scene_ground.height_map_offsets(g1.HEIGHT_MAP_N, g1.HEIGHT_MAP_CELL_M)
    assert off.shape == (11, 11, 2) and np.allclose(off[5, 5], 0) and off[10, 5, 0] == pytest.approx(0.5)
    assert off[5, 0, 1] == pytest.approx(-0.5)  # column 0 on the root's right


def test_the_export_names_the_slice_and_the_runtime_refuses_it_by_name(tmp_path):
    st = build_student(StudentConfig(kind="mlp", width=16, blocks=1, height_map=True))
    path = export_student(st, tmp_path / "terrain.onnx", {})
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert meta["obs_layout"][-1] == [g1.HEIGHT_MAP_TERM, 121]
    assert sum(n for _, n in meta["obs_layout"]) == 2206 + 121 == st.cfg.obs_dim
    with pytest.raises(DeployError, match=f"{g1.HEIGHT_MAP_TERM}.*no height source"):
        OnnxPolicy(path)
    flat = export_student(build_student(StudentConfig(kind="mlp", width=16, blocks=1)), tmp_path / "flat.onnx", {})
    assert OnnxPolicy(flat).latent_dim == 256  # the same student without the slice loads


def test_teacher_checkpoint_layout_names_the_height_map():
    """A teacher trained with the slice records it, and is refused by an env without it (and back)."""
    from robomirror import g1_contract as g1
    from train.teacher import PolicyError, check_layout, layout_meta

    on, off = layout_meta(True), layout_meta(False)
    assert [g1.HEIGHT_MAP_TERM, g1.HEIGHT_MAP_DIM] in on["teacher"] and on["teacher"][:-1] == off["teacher"]
    check_layout({"obs_layout": on}, "ckpt", height_map=True)
    check_layout({"obs_layout": off}, "ckpt", height_map=False)
    for meta, hm in ((on, False), (off, True)):
        with pytest.raises(PolicyError, match="another observation layout"):
            check_layout({"obs_layout": meta}, "ckpt", height_map=hm)
