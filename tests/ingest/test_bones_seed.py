"""BONES-SEED G1 CSV reader: the loaders' conventions, columns by name, texts, ledger reasons, the store path."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ingest.bones_seed import (
    JOINT_COLUMNS,
    discover_bones_seed,
    euler_xyz_extrinsic_deg_to_quat_wxyz,
    read_bones_seed_csv,
)
from ingest.config import IngestConfig
from ingest.pipeline import run_ingest
from ingest.sample.formats import (
    BONES_SEED_SAMPLE,
    bones_seed_table,
    g1_walk_in_place,
    write_bones_seed_csv,
    write_bones_seed_root,
)
from robomirror.errors import SourceError
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.paths import DataLayout
from robomirror.rotations import quat_wxyz_to_matrix
from robomirror.shards import published_shards
from robomirror.tario import read_tar

GATED = "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"


def test_root_rotation_is_extrinsic_xyz_degrees_as_the_loaders_read_it():
    """ProtoMotions and GR00T call scipy's from_euler("xyz", degrees=True): R = Rz Ry Rx."""
    q = euler_xyz_extrinsic_deg_to_quat_wxyz(np.array([[90.0, 0.0, 90.0]]))
    m = quat_wxyz_to_matrix(q)[0]
    np.testing.assert_allclose(m @ [1, 0, 0], [0, 1, 0], atol=1e-12)  # Rx keeps x, then Rz(90) takes it to y
    np.testing.assert_allclose(m @ [0, 1, 0], [0, 0, 1], atol=1e-12)  # Rx(90) takes y to z, Rz keeps it
    euler = np.random.default_rng(0).uniform(-180, 180, (50, 3)) * [1, 0.49, 1]
    ours = euler_xyz_extrinsic_deg_to_quat_wxyz(euler)
    theirs = Rotation.from_euler("xyz", euler, degrees=True).as_quat()[:, [3, 0, 1, 2]]
    np.testing.assert_allclose(np.abs(np.sum(ours * theirs, axis=1)), 1.0, atol=1e-12)  # q and -q: one rotation


def _tilted_motion(n: int = 40):
    root, quat, joints = g1_walk_in_place(n, 120.0, seed=2, yaw_rate_rad_s=2.0)
    tilt = Rotation.from_euler("xyz", [[12.0, -8.0, 0.0]], degrees=True)  # roll and pitch: the order matters
    quat = (tilt * Rotation.from_quat(quat[:, [1, 2, 3, 0]])).as_quat()[:, [3, 0, 1, 2]]
    return root, quat, joints


def test_rows_read_back_in_our_units_and_joint_order(tmp_path):
    root, quat, joints = _tilted_motion()
    header, rows = bones_seed_table(root, quat, joints)
    write_bones_seed_csv(tmp_path / "m.csv", header, rows)
    traj = read_bones_seed_csv(str(tmp_path / "m.csv"))
    assert traj.fps == 120.0 and traj.joint_pos.shape == (40, 29)
    np.testing.assert_allclose(traj.root_pos_w, root, atol=1e-7)  # cm -> m
    np.testing.assert_allclose(traj.joint_pos, joints, atol=1e-7)  # deg -> rad
    np.testing.assert_allclose(np.abs(np.sum(traj.root_quat_wxyz * quat, axis=1)), 1.0, atol=1e-9)


def test_joint_columns_are_taken_by_name_not_position(tmp_path):
    root, quat, joints = _tilted_motion(10)
    header, rows = bones_seed_table(root, quat, joints)
    perm = [0, *range(7, len(header))[::-1], *range(1, 7)]  # joints reversed, root columns last
    write_bones_seed_csv(tmp_path / "shuffled.csv", [header[i] for i in perm], rows[:, perm])
    # the writer formats column 0 as an int: it is Frame in both files
    traj = read_bones_seed_csv(str(tmp_path / "shuffled.csv"))
    np.testing.assert_allclose(traj.joint_pos, joints, atol=1e-7)
    np.testing.assert_allclose(traj.root_pos_w, root, atol=1e-7)


def test_columns_that_do_not_match_the_contract_are_bad_columns_naming_them(tmp_path):
    header, rows = bones_seed_table(*_tilted_motion(5))
    knee = header.index("left_knee_joint_dof")
    cases = {
        "missing.csv": ([h for i, h in enumerate(header) if i != knee], np.delete(rows, knee, axis=1),
                        "left_knee_joint_dof"),
        "extra.csv": ([*header, "head_yaw_joint_dof"], np.concatenate([rows, rows[:, :1] * 0], 1), "head_yaw_joint_dof"),
        "renamed.csv": ([h.removesuffix("_dof") for h in header], rows, "Missing"),
    }
    for name, (h, r, expect) in cases.items():
        write_bones_seed_csv(tmp_path / name, h, r)
        with pytest.raises(SourceError) as e:
            read_bones_seed_csv(str(tmp_path / name))
        assert e.value.reason == "bad_columns", name
        assert expect in e.value.detail and str(tmp_path / name) in str(e.value), name
    (tmp_path / "lfs.csv").write_text(GATED)
    with pytest.raises(SourceError) as e:
        read_bones_seed_csv(str(tmp_path / "lfs.csv"))
    assert e.value.reason == "not_downloaded" and "licence" in e.value.detail
    h, r = header, rows.copy()
    r[3, 0] = r[2, 0]  # a repeated frame number: not the 120 Hz clock
    write_bones_seed_csv(tmp_path / "frames.csv", h, r)
    with pytest.raises(SourceError) as e:
        read_bones_seed_csv(str(tmp_path / "frames.csv"))
    assert e.value.reason == "non_monotonic_time"


def test_joint_columns_are_the_g1_contract_with_the_dof_suffix():
    assert tuple(c.removesuffix("_dof") for c in JOINT_COLUMNS) == G1_29DOF_JOINTS


def _members(layout: DataLayout) -> dict[str, bytes]:
    shards = published_shards(layout.manifest("ingest", "bones_seed"))
    return dict(m for sh in shards for m in read_tar(sh))


def test_ingest_resamples_to_30hz_keeps_descriptions_and_segments_and_ledgers_the_rest(tmp_path):
    src = tmp_path / "bones_seed"
    write_bones_seed_root(src, soma_bvh=False)  # the G1 CSV contract; SOMA BVH: test_soma_bvh.py
    header, rows = bones_seed_table(*g1_walk_in_place(240, 120.0))
    write_bones_seed_csv(src / "g1" / "csv" / "210531" / "no_knee__A009.csv",
                         [h for h in header if h != "right_knee_joint_dof"],
                         np.delete(rows, header.index("right_knee_joint_dof"), axis=1))
    (src / "g1" / "csv" / "210531" / "gated__A009.csv").write_text(GATED)
    layout = DataLayout(tmp_path / "data")
    s = run_ingest(layout, {"bones_seed": src}, IngestConfig(), executor="serial", progress=False)
    assert dict(s.failures_by_reason) == {"bad_columns": 1, "not_downloaded": 1}, s.failures
    assert "right_knee_joint_dof" in next(f for f in s.failures if "no_knee" in f.path).detail
    assert s.built == 2 and s.clips == 2  # 3 s -> one short clip, 6 s -> one 5 s clip

    members = _members(layout)
    metas = {k.split(".")[0]: json.loads(v) for k, v in members.items() if k.endswith("meta.json")}
    npzs = {k.split(".")[0]: np.load(io.BytesIO(v), allow_pickle=False) for k, v in members.items()
            if k.endswith("human.npz")}
    by_seq = {m["sequence"] if "sequence" in m else m["source"]["sequence"]: k for k, m in metas.items()}
    _, name, _, descs, events = BONES_SEED_SAMPLE[0]
    meta = metas[by_seq[name]]
    texts = meta["texts"]
    assert {t["text"] for t in texts if t["kind"].startswith("natural_desc")} == set(descs)
    segments = [(t["start_s"], t["end_s"], t["text"]) for t in texts if t["kind"] == "temporal_segment"]
    assert segments == [(a, b, d) for a, b, d in events]
    assert any(t["kind"] == "technical_description" for t in texts)
    # 120 -> 30 Hz: frame k of the clip is row 4k of the file, the exact trajectory rides along
    z = npzs[by_seq[name]]
    assert z["param_g1_joint_pos"].shape == (90, 29)
    file_rows = np.loadtxt(src / "g1" / "csv" / "210531" / f"{name}.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(z["param_g1_joint_pos"], np.deg2rad(file_rows[::4, 7:]), atol=1e-5)


def test_gated_metadata_refuses_every_motion_naming_the_file_and_an_unextracted_archive_says_extract(tmp_path):
    src = tmp_path / "bones_seed"
    write_bones_seed_root(src, soma_bvh=False)  # the G1 CSV contract; SOMA BVH: test_soma_bvh.py
    meta = src / "metadata" / "seed_metadata_v004.parquet"
    meta.write_text(GATED)
    layout = DataLayout(tmp_path / "data")
    s = run_ingest(layout, {"bones_seed": src}, IngestConfig(), executor="serial", progress=False)
    assert dict(s.failures_by_reason) == {"not_downloaded": 2} and s.clips == 0
    assert all(str(meta) in f.path or str(meta) in f.detail for f in s.failures)

    bare = tmp_path / "download"
    bare.mkdir()
    (bare / "g1.tar.gz").write_bytes(b"\x1f\x8b")
    refs = discover_bones_seed(bare)
    assert len(refs) == 1 and refs[0].problem[0] == "not_a_source" and "tar -xzf" in refs[0].problem[1]
