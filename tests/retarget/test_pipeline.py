"""The retarget stage over ingest shards: same keys, metrics in the manifest, deterministic,
resumable after SIGKILL, bad clips in the ledger."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import webdataset as wds

from ingest.failures import read_ledger
from retarget.config import RetargetConfig
from retarget.pipeline import run_retarget
from robomirror.atomic import digest_of, npz_bytes, sha256_bytes
from robomirror.paths import DataLayout
from robomirror.tario import read_tar, write_tar
from tests.conftest import REPO, stage_digests


def test_same_keys_and_beyondmimic_members(retargeted):
    layout, summary = retargeted
    assert summary.failed_clips == 0 and summary.clips > 0
    for ds in ("motionx", "nymeria"):
        ingest_ids = pq.read_table(layout.manifest("ingest", ds)).column("clip_id").to_pylist()
        rows = pq.read_table(layout.manifest("retarget", ds)).to_pylist()
        assert sorted(r["clip_id"] for r in rows) == sorted(ingest_ids)
        urls = sorted(str(p) for p in layout.shard_dir("retarget", ds).glob("shard-*.tar"))
        for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
            robot = np.load(io.BytesIO(s["robot.npz"]))
            report = json.loads(s["retarget.json"])
            n = report["n_frames"]
            assert robot["joint_pos"].shape == (n, 23) and robot["body_quat_w"].shape == (n, 30, 4)
            assert robot["contact"].shape == (n, 2) and float(robot["fps"]) == 30.0
            assert set(report["metrics"]) >= {"mpkpe_aligned_mean_m", "foot_skate_cm_s", "penetration_cm",
                                              "joint_limit_violations", "self_collision_frames"}
            assert report["metrics"]["joint_limit_violations"] == 0
            assert report["metrics"]["penetration_cm"] < 0.5
            assert report["stability"]["reason"] in ("ok", "first_frame_unstable", "last_frame_unstable", "unstable_run")
        for r in rows:
            assert 0 < r["mpkpe_aligned_mean_m"] < 0.15


def test_rerun_is_cached_and_a_clean_run_is_byte_identical(retargeted, tmp_path):
    layout, _ = retargeted
    again = run_retarget(layout, RetargetConfig(), executor="serial", progress=False)
    assert again.built == 0 and again.cached == again.shards_in
    other = DataLayout(tmp_path / "d")
    shutil.copytree(layout.root / "shards" / "ingest", other.root / "shards" / "ingest")
    run_retarget(other, RetargetConfig(), executor="serial", progress=False)
    assert stage_digests(other, "retarget") == stage_digests(layout, "retarget")


def test_sigkill_then_resume(retargeted, tmp_path):
    layout, _ = retargeted
    root = tmp_path / "killed"
    shutil.copytree(layout.root / "shards" / "ingest", root / "shards" / "ingest")
    cmd = [sys.executable, "-m", "retarget", "--data-root", str(root), "run", "--executor", "serial", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(root.glob("work/retarget/*/*.json")):
        time.sleep(0.005)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed"
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert stage_digests(DataLayout(root), "retarget") == stage_digests(layout, "retarget")


def test_bad_clip_goes_to_the_ledger_and_the_rest_is_kept(retargeted, tmp_path):
    layout, summary = retargeted
    root = tmp_path / "bad"
    shutil.copytree(layout.root / "shards" / "ingest", root / "shards" / "ingest")
    shard = sorted((root / "shards/ingest/motionx").glob("shard-*.tar"))[0]
    members = list(read_tar(str(shard)))
    victim = members[0][0].split(".")[0]
    patched = []
    for name, data in members:
        if name == f"{victim}.human.npz":
            h = dict(np.load(io.BytesIO(data)))
            h["joint_names"] = np.array([f"j{i}" for i in range(len(h["joint_names"]))])  # unknown skeleton
            data = npz_bytes(h)
        patched.append((name, data))
    with open(shard, "wb") as f:
        write_tar(f, patched)
    side = json.loads(shard.with_suffix(".json").read_text())  # a valid shard whose one clip is bad
    side["members"] = [[n, len(d), sha256_bytes(d)] for n, d in patched]
    side.update(bytes=shard.stat().st_size, plan_digest=digest_of([(n, h) for n, _, h in side["members"]]))
    shard.with_suffix(".json").write_text(json.dumps(side))
    s = run_retarget(DataLayout(root), RetargetConfig(), executor="serial", progress=False)
    ledger = read_ledger(DataLayout(root).ledger("retarget"))
    assert len(ledger) == 1 and ledger[0].reason == "retarget_error" and victim in ledger[0].path
    assert "no keypoint table fits" in ledger[0].detail
    assert s.clips == summary.clips - 1


def test_per_clip_timing_reaches_the_catalog_and_the_report(retargeted):
    from catalog.sql import query

    layout, summary = retargeted
    rows = query(layout, "SELECT clip_id, n_frames, ik_frames_per_s, total_frames_per_s FROM retarget_timing").fetchall()
    clips = query(layout, "SELECT count(*) FROM retarget").fetchone()[0]
    assert len(rows) == clips and all(r[1] > 0 and r[2] > 0 and 0 < r[3] <= r[2] for r in rows)
