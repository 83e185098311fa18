"""The sample corpus: deterministic bytes, the real layouts, videos that depend on the motion."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ingest.sample.corpus import SampleConfig, build_sample
from ingest.sample.motions import KINDS, Segment, generate
from ingest.video import decode_mp4_bytes

TINY = SampleConfig(seed=3, n_motionx=2, n_nymeria=1, max_seconds=4.0)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _digests(build_sample(tmp_path / "a", TINY, progress=False)["motionx"].parent)
    b = _digests(build_sample(tmp_path / "b", TINY, progress=False)["motionx"].parent)
    c = _digests(build_sample(tmp_path / "c", SampleConfig(seed=4, n_motionx=2, n_nymeria=1, max_seconds=4.0),
                              progress=False)["motionx"].parent)
    assert a == b
    assert a != c
    assert any(k.startswith("motionx/motion/motion_generation/smplx322/") and k.endswith(".npy") for k in a)
    assert any(k.endswith("body/xdata_smpl_neutral.npz") for k in a)
    assert any(k.endswith("narration/atomic_action.csv") for k in a)


def test_all_kinds_stay_on_the_ground_with_plausible_height():
    for kind in KINDS:
        p = generate([Segment(kind, 3.0, 1.0)], 30.0, beta0=0.0)
        assert np.all(np.isfinite(p["trans"]))
        assert 0.7 < p["trans"][:, 1].mean() < 1.1, kind  # pelvis height [m], y-up


def test_videos_depend_on_the_motion(small_sample):
    vids = sorted((small_sample["motionx"] / "video").rglob("*.mp4"))
    first = [decode_mp4_bytes(v.read_bytes())[0] for v in vids[:2]]
    # different motions give different videos, and frames change over time within one
    assert np.abs(first[0][0].astype(int) - first[1][0].astype(int)).mean() > 1.0
    assert np.abs(first[0][0].astype(int) - first[0][-1].astype(int)).mean() > 0.5
    ego = sorted(small_sample["nymeria"].glob("*/recording_head/rgb.mp4"))[0]
    frames = decode_mp4_bytes(ego.read_bytes())[0]
    assert np.abs(frames[0].astype(int) - frames[len(frames) // 2].astype(int)).mean() > 1.0


def test_sample_reproduces_the_real_format_quirks(small_sample):
    """The quirks the readers must handle are in the sample, written as the real files have them."""
    import csv

    mx = small_sample["motionx"]
    assert list((mx / "motion_data" / "smplx_322").rglob("*.npy"))  # Motion-X v1 layout
    assert list((mx / "motion" / "motion_generation" / "smplx322").rglob("*.npy"))  # Motion-X++ layout
    humanml = list((mx / "text" / "semantic_label" / "humanml").glob("*.txt"))
    assert humanml and all(len(ln.split("#")) == 4 for ln in humanml[0].read_text().splitlines())
    assert not list((mx / "video" / "humanml").glob("*.mp4")) if (mx / "video" / "humanml").exists() else True
    rates = list(csv.DictReader(open(mx / "sequence_fps.csv")))
    assert rates and abs(float(rates[0]["fps"]) - 100 / 3) < 1e-4
    no_video = [d for d in small_sample["nymeria"].iterdir() if not (d / "recording_head" / "rgb.mp4").is_file()]
    assert len(no_video) == 1 and (no_video[0] / "narration").is_dir()  # body + narration, no head video
    for seq in sorted(small_sample["nymeria"].iterdir()):
        header = next(csv.reader(open(seq / "narration" / "motion_narration.csv")))
        assert header[2:] == ["Describe my body posture", "Describe my hands/arms motion",
                              "Describe my legs/feet motion", "Describe my focus attention"]
        head = seq / "recording_head"
        # the one sequence downloaded without the head video has only its clock (motion.vrs stand-in)
        clock_csv = "rgb_timestamps_ns.csv" if (head / "rgb.mp4").is_file() else "motion_timesync_ns.csv"
        clocks = list(csv.DictReader(open(head / clock_csv)))
        offset = int(clocks[0]["timecode_ns"]) - int(clocks[0]["capture_timestamp_ns"])
        assert offset > 100e9  # device time and time code differ by far more than a clip
        t_us = np.load(seq / "body" / "xdata.npz")["timestamps_us"]
        assert int(np.load(seq / "body" / "xdata.npz")["frameCount"]) == len(t_us)
        assert np.any(np.abs(np.diff(t_us) - 1e6 / 240) > 1000)  # bad steps the loader must repair


ROBOT = SampleConfig(seed=3, n_motionx=1, n_nymeria=0, n_nymeria_no_video=0, max_seconds=4.0, n_g1_csv=2,
                     bones_seed=True)


def test_g1_corpora_are_drawn_last_from_their_own_seeds(tmp_path):
    """Adding the G1 corpora leaves the human files' bytes as they were; they follow the seed like the rest."""
    from dataclasses import replace

    with_robot = build_sample(tmp_path / "a", ROBOT, progress=False)
    assert set(with_robot) == {"motionx", "nymeria", "g1_csv", "bones_seed"}
    a = _digests(tmp_path / "a")
    human_only = _digests(build_sample(tmp_path / "h", replace(ROBOT, n_g1_csv=0, bones_seed=False),
                                       progress=False)["motionx"].parent)
    assert {k: v for k, v in a.items() if k.startswith(("motionx/", "nymeria/"))} == human_only
    assert a == _digests(build_sample(tmp_path / "b", ROBOT, progress=False)["motionx"].parent)
    other = _digests(build_sample(tmp_path / "c", replace(ROBOT, seed=4), progress=False)["motionx"].parent)
    robot_files = [k for k in a if k.startswith(("g1_csv/g1/", "bones_seed/g1/", "bones_seed/soma_uniform/bvh/"))]
    assert len(robot_files) == 6 and all(a[k] != other[k] for k in robot_files)
    # the release layouts the readers expect, including the folder of another robot the LAFAN1 reader skips
    assert (tmp_path / "a" / "g1_csv" / "h1").is_dir()
    assert sorted(p.name for p in (tmp_path / "a" / "bones_seed" / "metadata").iterdir()) == [
        "seed_metadata_v002_temporal_labels.jsonl", "seed_metadata_v004.parquet"]


def test_ingest_run_without_source_flags_takes_the_samples_g1_corpora(tmp_path):
    """`python -m ingest sample` writes them by default and `ingest run` with no source flag ingests them."""
    import pyarrow.parquet as pq

    from ingest.__main__ import main

    root = str(tmp_path / "data")
    assert main(["--data-root", root, "sample", "--motionx", "0", "--nymeria", "0", "--nymeria-no-video", "0",
                 "--motionx-short", "0", "--no-scenes"]) == 0
    assert (tmp_path / "data" / "sample" / "g1_csv" / "g1").is_dir()
    assert main(["--data-root", root, "run", "--executor", "serial", "--no-progress",
                 "--only", "g1_csv", "--only", "bones_seed"]) == 0
    for ds, n in (("g1_csv", 2), ("bones_seed", 2)):
        rows = pq.read_table(tmp_path / "data" / "shards" / "ingest" / ds / "manifest.parquet").to_pylist()
        assert len({r["sequence"] for r in rows}) == n, ds


def test_short_sequences_are_drawn_from_their_own_seed(tmp_path):
    """The evaluation's bulk (issue 21): one-clip Motion-X sequences with video, added without changing
    any other file's bytes, each within its duration range and in a subset that sorts after idea400."""
    from dataclasses import replace

    from ingest.sample.corpus import SHORT_SUBSET, plan
    from ingest.sample.write import MOTIONX_FPS

    cfg = replace(TINY, n_motionx_short=4)
    with_short = _digests(build_sample(tmp_path / "a", cfg, progress=False)["motionx"].parent)
    without = _digests(build_sample(tmp_path / "b", TINY, progress=False)["motionx"].parent)
    added = {k for k in with_short if f"/{SHORT_SUBSET}/" in k}
    assert {k: v for k, v in with_short.items() if k not in added} == without
    assert len([k for k in added if k.startswith(f"motionx/video/{SHORT_SUBSET}/")]) == 4
    short = [m for m in plan(cfg)[0] if m.subset == SHORT_SUBSET]
    lo, hi = cfg.short_seconds
    assert len(short) == 4 and all(m.video and lo <= m.segment.seconds <= hi for m in short)
    assert len({m.segment.kind for m in short}) == 4  # the kinds cycle: texts differ across the bulk
    for m in short:  # one clip each: longer than the ingest's 60-frame minimum, shorter than a 150-frame clip
        frames = len(decode_mp4_bytes((tmp_path / "a" / "motionx" / "video" / SHORT_SUBSET / f"{m.name}.mp4")
                                      .read_bytes())[0])
        assert 60 <= frames <= 150 and abs(frames - m.segment.seconds * MOTIONX_FPS) <= 2
    assert sorted(["idea400", SHORT_SUBSET])[0] == "idea400"  # `ls video/*/*.mp4 | head -1` keeps its video


def test_short_seconds_outside_one_clip_are_refused():
    import pytest

    from robomirror.errors import ConfigError

    with pytest.raises(ConfigError, match="short_seconds"):
        SampleConfig(short_seconds=(1.0, 3.0))
    with pytest.raises(ConfigError, match="short_seconds"):
        SampleConfig(short_seconds=(3.0, 6.0))


def test_the_default_sample_writes_scene_sequences_that_ingest_run_takes(tmp_path):
    """`python -m ingest sample` writes the holosoma-layout scenes (issue 22) and `ingest run` with no
    source flag ingests them as scene clips (a stair climb, a bench sit, a slope walk)."""
    import pyarrow.parquet as pq

    from ingest.__main__ import main

    root = str(tmp_path / "data")
    assert main(["--data-root", root, "sample", "--motionx", "0", "--nymeria", "0", "--nymeria-no-video", "0",
                 "--g1-csv", "0", "--no-bones-seed", "--motionx-short", "0"]) == 0
    assert sorted(p.name for p in (tmp_path / "data" / "sample" / "holosoma_climb").iterdir()) == [
        "scene_bench", "scene_slope", "scene_stairs"]
    assert main(["--data-root", root, "run", "--executor", "serial", "--no-progress", "--only", "holosoma_climb"]) == 0
    import json

    from robomirror.shards import published_shards
    from robomirror.tario import read_tar

    manifest = tmp_path / "data" / "shards" / "ingest" / "holosoma_climb" / "manifest.parquet"
    assert {r["sequence"] for r in pq.read_table(manifest).to_pylist()} == {"scene_bench", "scene_slope", "scene_stairs"}
    metas = [json.loads(b) for shard in published_shards(manifest) for n, b in read_tar(str(shard))
             if n.endswith(".meta.json")]
    assert {m["scene"]["kind"] for m in metas} == {"stairs", "bench", "slope"}
    # and --no-scenes leaves them out
    assert main(["--data-root", str(tmp_path / "d2"), "sample", "--motionx", "0", "--nymeria", "0",
                 "--nymeria-no-video", "0", "--g1-csv", "0", "--no-bones-seed", "--motionx-short", "0",
                 "--no-scenes"]) == 0
    assert not (tmp_path / "d2" / "sample" / "holosoma_climb").exists()
