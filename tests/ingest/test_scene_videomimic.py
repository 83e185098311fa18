"""VideoMimic real2sim results at ingest (issue 22): the person's SMPL walk up a reconstructed staircase,
read with its mesh, moved to floor z = 0 and stored once; malformed folders each one ledger row.

The fixtures (tests/ingest/videomimic_fixtures.py) write their layout with h5py, which requirements.txt
does not pin yet: without it these tests skip, except the one that the reader names the pin."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.body_model import load_body_model
from ingest.config import IngestConfig
from ingest.failures import Reason, read_ledger
from ingest.pipeline import run_ingest
from ingest.scene import load_scene, scenes_dir
from ingest.scene_videomimic import FPS_TABLE, H5PY_PIN, discover_videomimic, read_videomimic
from robomirror.errors import ConfigError
from robomirror.paths import DataLayout
from robomirror.shards import published_shards
from robomirror.tario import read_tar
from tests.ingest import videomimic_fixtures as vm

CFG = IngestConfig(clip_frames=60, stride_frames=60, min_frames=30)
needs_h5py = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                                reason=f"h5py not installed (the VideoMimic reader needs {H5PY_PIN})")
BAD = {"IMG_mm": Reason.SCENE_UNITS, "IMG_yup": Reason.SCENE_UP_AXIS, "IMG_nokey": Reason.BAD_SHAPE,
       "IMG_aa": Reason.BAD_SHAPE, "IMG_g1": Reason.MISSING_FILE,
       "IMG_0003": Reason.NOT_A_SOURCE}  # person 2 of IMG_0003 was left out of stage 3's gravity calibration


def _metas(layout: DataLayout) -> list[dict]:
    out = []
    for shard in published_shards(layout.manifest("ingest", "videomimic")):
        out += [json.loads(b) for n, b in read_tar(str(shard)) if n.endswith(".meta.json")]
    return out


def _video(sequence: str) -> str:
    return sequence.split("_reconstruction_results_")[1].split("_cam01")[0]


def test_without_h5py_discovery_names_the_pin(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    with pytest.raises(ConfigError, match=H5PY_PIN.replace(".", r"\.")):
        discover_videomimic(tmp_path)


@pytest.fixture(scope="module")
def vm_root(tmp_path_factory) -> tuple[Path, DataLayout]:
    src = tmp_path_factory.mktemp("videomimic_src")
    vm.write_result(src, "new_stairs_apr19", "IMG_0001")
    vm.write_result(src, "new_stairs_apr19", "IMG_0002", people=("1", "2"), subsample=2)
    vm.write_result(src, "new_stairs_apr19", "IMG_0003", people=("1", "2"), calibrated=("1",))
    vm.write_result(src, "", "IMG_mm", mesh_units="mm")
    vm.write_result(src, "", "IMG_yup", mesh_up="y")
    vm.write_result(src, "", "IMG_nokey", drop="body_pose")
    vm.write_result(src, "", "IMG_aa", body_pose_as="axis_angle")
    vm.write_g1_only(src, "g1_only", "IMG_g1")
    layout = DataLayout(tmp_path_factory.mktemp("videomimic_root"))
    run_ingest(layout, {"videomimic": src}, CFG, executor="serial", progress=False)
    return src, layout


@needs_h5py
def test_stair_walks_ingest_with_their_scene_on_every_clip(vm_root):
    _, layout = vm_root
    metas = _metas(layout)
    by_seq: dict[str, set] = {}
    for m in metas:
        by_seq.setdefault(m["sequence"], set()).add(m["scene"]["scene_id"])
    people = sorted((_video(s), s.rsplit("__person_", 1)[-1] if "__person_" in s else "1") for s in by_seq)
    assert people == [("IMG_0001", "1"), ("IMG_0002", "1"), ("IMG_0002", "2"), ("IMG_0003", "1")]  # one per person
    assert all(len(ids) == 1 for ids in by_seq.values())  # every clip of a sequence refers to one scene
    assert len(metas) >= 6  # 168 frames at 30 fps in 60-frame clips: more than one clip per sequence
    stored = sorted(p.stem for p in scenes_dir(layout.root).glob("*.npz"))
    assert stored == sorted({i for ids in by_seq.values() for i in ids})  # stored once, named by content
    for m in metas:
        assert (m["scene"]["kind"], m["scene"]["units"], m["scene"]["up_axis"]) == ("stairs", "m", "z")
        assert m["notes"]["floor_shift_m"] == pytest.approx(vm.CAMERA_HEIGHT_M, abs=0.03)
        assert m["notes"]["video_fps"] == 30.0
        scene = load_scene(layout.root, m["scene"]["scene_id"])
        lo, hi = scene.bounds_m
        assert lo[2] == pytest.approx(0.0, abs=0.03) and hi[2] == pytest.approx(0.6, abs=0.03)  # floor at 0


@needs_h5py
def test_malformed_folders_are_one_ledger_row_each(vm_root):
    _, layout = vm_root
    rows = read_ledger(layout.ledger("ingest"))
    by_video = {}
    for f in rows:
        by_video.setdefault(_video(f.sequence), []).append(f)
    assert sorted(by_video) == sorted(BAD)
    for video, reason in BAD.items():
        assert [f.reason for f in by_video[video]] == [reason.value], video
    detail = {v: fs[0].detail for v, fs in by_video.items()}
    assert "millimetres" in detail["IMG_mm"]
    assert "y-up to z-up" in detail["IMG_yup"]
    assert "missing arrays ['body_pose']" in detail["IMG_nokey"]
    assert "(T, 23, 3, 3)" in detail["IMG_aa"] and "(168, 69)" in detail["IMG_aa"]
    assert by_video["IMG_0003"][0].sequence.endswith("__person_2") and "--multihuman" in detail["IMG_0003"]
    assert "retarget_poses_g1.h5" in detail["IMG_g1"] and "gravity_calibrated_megahunter.h5" in detail["IMG_g1"]
    published = {m["sequence"] for m in _metas(layout)}
    assert not (set(BAD) - {"IMG_0003"}) & {_video(q) for q in published}
    assert by_video["IMG_0003"][0].sequence not in published


@needs_h5py
def test_walk_is_on_the_stairs_after_the_floor_shift(tmp_path):
    vm.write_result(tmp_path, "", "IMG_0001")
    (ref,) = discover_videomimic(tmp_path)
    seq = read_videomimic(ref, load_body_model("smpl", None), IngestConfig())
    names = list(seq.joint_names)
    feet = seq.joint_pos_w[:, [names.index(j) for j in ("left_foot", "right_foot")]]
    gap = feet[..., 2] - seq.scene.height_at(feet[..., :2])
    assert gap[:10] == pytest.approx(0.02, abs=0.01)  # standing on the ground, 2 cm sole
    assert gap[-10:] == pytest.approx(0.02, abs=0.01)  # standing on the landing
    assert seq.scene.height_at(feet[-1, :, :2]) == pytest.approx([0.6, 0.6], abs=0.01)
    pelvis = seq.joint_pos_w[:, names.index("pelvis"), 2]
    assert pelvis[-1] - pelvis[0] == pytest.approx(0.6, abs=0.02)  # climbed four 15 cm steps
    # root_transl is the pelvis joint in their world: ours is that, moved by the floor shift
    assert seq.params["trans"][0, 2] == pytest.approx(pelvis[0], abs=1e-5)  # built-in skeleton: pelvis rest at 0
    assert (seq.source_fps, seq.n_frames, seq.notes["frame_gaps"]) == (30.0, 168, 0)


@needs_h5py
def test_late_person_with_a_gap_and_the_fps_table(tmp_path):
    d = vm.write_result(tmp_path, "", "IMG_0002", people=("1", "2"), subsample=2)
    refs = {r.sequence.rsplit("__person_", 1)[1]: r for r in discover_videomimic(tmp_path)}
    assert sorted(refs) == ["1", "2"]
    body = load_body_model("smpl", None)
    late = read_videomimic(refs["2"], body, IngestConfig())
    # rows 10..83 of images 1, 3, 5, ... with rows 20-24 missing: time from the image numbers, not the row
    assert late.notes["source_frames"] == [21, 167] and late.notes["frame_gaps"] == 1
    assert late.source_fps == 15.0 and late.n_frames == int((167 - 21) / 30 * 30) + 1
    (tmp_path / FPS_TABLE).write_text(f"folder,video_fps\n{d.name},60\n")
    fast = read_videomimic(refs["2"], body, IngestConfig())
    assert fast.source_fps == 30.0 and fast.n_frames == int((167 - 21) / 60 * 30) + 1
    assert fast.notes["video_fps_from"] == FPS_TABLE
    (tmp_path / FPS_TABLE).write_text(f"folder,video_fps\n{d.name},zero\n")
    with pytest.raises(Exception, match="video_fps") as e:
        read_videomimic(refs["2"], body, IngestConfig())
    assert e.value.reason == Reason.BAD_CSV.value
    assert np.isfinite(late.joint_pos_w).all()
