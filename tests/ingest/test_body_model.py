"""Body models: the real `smplx` path on a synthetic model file in the SMPL-X .npz key layout.

The synthetic model puts one vertex at each rest joint of the built-in skeleton, skins it rigidly
to that joint and regresses joints from exactly those vertices, with no blend shapes. Through
`smplx` it must then give the same joints as the built-in skeleton: that checks our kinematic
conventions (rotation about each joint, root about the pelvis, `transl` added) against smplx's.
"""

from __future__ import annotations

import numpy as np
import pytest

from ingest.body_model import BuiltinSkeleton, SmplxBody, load_body_model
from ingest.skeletons import SMPLX_PARENTS
from robomirror.errors import ConfigError

N_VERTS = 10475  # SMPL-X; smplx indexes extra joints up to vertex 9929


def _rest_joints(skel: BuiltinSkeleton) -> np.ndarray:
    off = skel.rest_offsets(np.zeros(10))[0]
    pos = np.zeros_like(off)
    for j, p in enumerate(skel.parents):
        pos[j] = off[j] if p < 0 else pos[p] + off[j]
    return pos


def write_synthetic_smplx(path, shapedirs: np.ndarray | None = None) -> None:
    skel = BuiltinSkeleton("smplx")
    joints = _rest_joints(skel)
    nj = len(joints)
    rng = np.random.default_rng(0)
    v = np.zeros((N_VERTS, 3))
    v[:nj] = joints
    v[nj:] = rng.normal(scale=0.01, size=(N_VERTS - nj, 3))
    weights = np.zeros((N_VERTS, nj))
    weights[np.arange(nj), np.arange(nj)] = 1.0
    weights[nj:, 0] = 1.0
    jreg = np.zeros((nj, N_VERTS))
    jreg[np.arange(nj), np.arange(nj)] = 1.0
    kintree = np.array([[4294967295 if p < 0 else p for p in SMPLX_PARENTS], list(range(nj))], dtype=np.int64)
    faces = np.arange(3 * 3000).reshape(-1, 3) % N_VERTS
    np.savez(
        path, v_template=v, f=faces.astype(np.int64), J_regressor=jreg, weights=weights,
        kintree_table=kintree, shapedirs=np.zeros((N_VERTS, 3, 400)) if shapedirs is None else shapedirs, posedirs=np.zeros((N_VERTS, 3, 486)),
        hands_componentsl=np.eye(45), hands_componentsr=np.eye(45), hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45), lmk_faces_idx=np.zeros(51, dtype=np.int64), lmk_bary_coords=np.full((51, 3), 1 / 3),
        dynamic_lmk_faces_idx=np.zeros((79, 17), dtype=np.int64),
        dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3),
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("body_models")
    (d / "smplx").mkdir()
    write_synthetic_smplx(d / "smplx" / "SMPLX_NEUTRAL.npz")
    return d


def test_smplx_package_agrees_with_builtin_skeleton(model_dir):
    real = load_body_model("smplx", model_dir)
    assert isinstance(real, SmplxBody) and real.name == "smplx:SMPLX_NEUTRAL.npz"
    rng = np.random.default_rng(3)
    t = 6
    go, body, transl = rng.normal(scale=0.6, size=(t, 3)), rng.normal(scale=0.4, size=(t, 63)), rng.normal(size=(t, 3))
    hands, jaw = rng.normal(scale=0.3, size=(t, 90)), rng.normal(scale=0.2, size=(t, 3))
    got = real.joints(go, body, transl, np.zeros((t, 10)), hands, jaw)
    want = BuiltinSkeleton("smplx").joints(go, body, transl, np.zeros((t, 10)), hands, jaw)
    assert got.shape == want.shape == (t, 55, 3)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_missing_or_pickle_model_files_are_refused(tmp_path):
    (tmp_path / "smplx").mkdir()
    (tmp_path / "smplx" / "SMPLX_NEUTRAL.pkl").write_bytes(b"not allowed")
    with pytest.raises(ConfigError, match="pickle"):
        load_body_model("smplx", tmp_path)
    with pytest.raises(ConfigError, match="model_type"):
        load_body_model("mano", None)


def test_builtin_bone_lengths_are_pose_invariant():
    skel = BuiltinSkeleton("smpl")
    rng = np.random.default_rng(0)
    pos = skel.joints(rng.normal(size=(20, 3)), rng.normal(size=(20, 69)), rng.normal(size=(20, 3)), np.ones(10))
    bones = np.linalg.norm(pos[:, 1:] - pos[:, [p for p in skel.parents[1:]]], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(bones[0], bones.shape), atol=1e-9)


def test_motionx_reader_with_real_model_files_path(model_dir, small_sample):
    from ingest.motionx import discover_motionx, read_motionx

    ref = discover_motionx(small_sample["motionx"])[0]
    real = read_motionx(ref, load_body_model("smplx", model_dir))
    builtin = read_motionx(ref, BuiltinSkeleton("smplx"))
    assert real.body_model.startswith("smplx:") and builtin.body_model.startswith("builtin-skeleton")
    # the synthetic file has no shape blend shapes; the built-in scales by betas[0]: same pose otherwise
    scale = 1.0 + 0.06 * builtin.params["betas"][:, :1, None]
    rel_real = real.joint_pos_w - real.joint_pos_w[:, :1]
    rel_builtin = builtin.joint_pos_w - builtin.joint_pos_w[:, :1]
    np.testing.assert_allclose(rel_real * scale, rel_builtin, atol=1e-4)
    # each body is put on the floor (z = 0) by its own lowest joint: the same root once that shift is undone
    unshift = lambda s: s.joint_pos_w[:, 0] - [0.0, 0.0, s.notes["floor_shift_m"]]  # noqa: E731
    assert real.notes["floor_shift_m"] != builtin.notes["floor_shift_m"]  # the two bodies differ in size
    np.testing.assert_allclose(unshift(real), unshift(builtin), atol=2e-4)
