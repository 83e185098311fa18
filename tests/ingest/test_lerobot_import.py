"""LeRobot import: `catalog export --format lerobot` read back as robot motions; names matched to the contract."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from catalog.export_lerobot import export_lerobot
from ingest.config import IngestConfig
from ingest.lerobot_import import discover_lerobot
from ingest.pipeline import run_ingest
from ingest.sample.formats import write_lafan1_root
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.paths import DataLayout
from robomirror.shards import published_shards
from robomirror.tario import read_tar


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The LAFAN1 sample ingested, retargeted and exported as a LeRobotDataset v3.0 tree."""
    from retarget.config import RetargetConfig
    from retarget.pipeline import run_retarget

    tmp = tmp_path_factory.mktemp("lerobot_import")
    write_lafan1_root(tmp / "lafan1", n_takes=2)
    layout = DataLayout(tmp / "data")
    run_ingest(layout, {"g1_csv": tmp / "lafan1"}, IngestConfig(), executor="serial", progress=False)
    run_retarget(layout, RetargetConfig(robot="g1_29dof"), executor="serial", progress=False)
    export_lerobot(layout, tmp / "g1_export")
    return tmp / "g1_export"


def _published(layout: DataLayout) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for sh in published_shards(layout.manifest("ingest", "lerobot")):
        for name, data in read_tar(sh):
            key, suffix = name.split(".", 1)
            out.setdefault(key, {})[suffix] = data
    return out


def test_export_then_import_gives_back_the_joint_trajectories(exported, tmp_path):
    layout = DataLayout(tmp_path / "data")
    s = run_ingest(layout, {"lerobot": exported}, IngestConfig(), executor="serial", progress=False)
    assert s.failed == 0 and s.built == 2, s.failures
    frames = pq.read_table(exported / "data" / "chunk-000" / "file-000.parquet").to_pandas()
    episodes = pq.read_table(exported / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    got = {}
    for m in _published(layout).values():
        meta = json.loads(m["meta.json"])
        z = np.load(io.BytesIO(m["human.npz"]), allow_pickle=False)
        got[meta["sequence"] if "sequence" in meta else meta["source"]["sequence"]] = (z, meta)
    assert sorted(got) == ["episode_000000", "episode_000001"]
    for ep in episodes:
        z, meta = got[f"episode_{ep['episode_index']:06d}"]
        rows = frames[frames.episode_index == ep["episode_index"]].sort_values("frame_index")
        state = np.stack(rows["observation.state"].to_numpy())
        n = len(z["param_g1_joint_pos"])
        assert n == min(len(state), IngestConfig().clip_frames)  # one clip per episode (3 s and 5 s takes)
        np.testing.assert_allclose(z["param_g1_joint_pos"], state[:n], atol=1e-6)
        np.testing.assert_allclose(z["param_g1_root_pos_w"], np.stack(rows["observation.root_pos_w"].to_numpy())[:n],
                                   atol=1e-6)
        assert {t["text"] for t in meta["texts"]} == set(ep["tasks"])  # tasks come back as texts


def _copy_with_names(src, dst, names):
    shutil.copytree(src, dst)
    info = json.loads((dst / "meta" / "info.json").read_text())
    info["features"]["observation.state"]["names"] = names
    (dst / "meta" / "info.json").write_text(json.dumps(info))
    return dst


def test_joint_names_are_matched_by_name_and_a_mismatch_is_refused_naming_it(exported, tmp_path):
    renamed = [n.replace("left_knee", "l_knee") for n in G1_29DOF_JOINTS]
    refs = discover_lerobot(_copy_with_names(exported, tmp_path / "renamed", renamed))
    assert len(refs) == 1 and refs[0].problem[0] == "bad_columns"
    assert "left_knee_joint" in refs[0].problem[1] and "info.json" in refs[0].files[0][1]
    refs = discover_lerobot(_copy_with_names(exported, tmp_path / "unnamed", None))
    assert refs[0].problem[0] == "bad_columns" and "no joint names" in refs[0].problem[1]

    # the same state under names without the `_joint` suffix (v2's {"motors": [...]} form) reads the same
    short = {"motors": [n.removesuffix("_joint") for n in G1_29DOF_JOINTS]}
    layout = DataLayout(tmp_path / "data")
    s = run_ingest(layout, {"lerobot": _copy_with_names(exported, tmp_path / "short", short)}, IngestConfig(),
                   executor="serial", progress=False)
    assert s.failed == 0 and s.built == 2, s.failures

    # a permuted state whose names say so: matched by name, not position
    shutil.copytree(exported, tmp_path / "perm")
    data_path = tmp_path / "perm" / "data" / "chunk-000" / "file-000.parquet"
    df = pq.read_table(data_path).to_pandas()
    df["observation.state"] = [np.asarray(v)[::-1].astype(np.float32) for v in df["observation.state"]]
    df.to_parquet(data_path)
    _copy_with_names(tmp_path / "perm", tmp_path / "perm2", list(G1_29DOF_JOINTS)[::-1])
    from ingest.lerobot_import import read_episode

    ref = discover_lerobot(tmp_path / "perm2")[0]
    traj, _, _ = read_episode(ref)
    orig = pq.read_table(exported / "data" / "chunk-000" / "file-000.parquet").to_pandas()
    orig = np.stack(orig[orig.episode_index == 0].sort_values("frame_index")["observation.state"].to_numpy())
    np.testing.assert_allclose(traj.joint_pos, orig, atol=1e-7)


def test_a_dataset_without_a_floating_base_or_of_another_version_is_one_named_ledger_row(exported, tmp_path):
    dst = shutil.copytree(exported, tmp_path / "nobase")
    info = json.loads((dst / "meta" / "info.json").read_text())
    del info["features"]["observation.root_pos_w"]
    (dst / "meta" / "info.json").write_text(json.dumps(info))
    (ref,) = discover_lerobot(dst)
    assert ref.problem[0] == "bad_columns" and "observation.root_pos_w" in ref.problem[1]
    info["codebase_version"] = "v2.1"
    (dst / "meta" / "info.json").write_text(json.dumps(info))
    (ref,) = discover_lerobot(dst)
    assert ref.problem[0] == "bad_columns" and "v2.1" in ref.problem[1] and "convert" in ref.problem[1]
