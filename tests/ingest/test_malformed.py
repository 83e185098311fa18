"""Bad inputs: each ends in the ledger with its typed reason; every good clip is still written."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ingest.failures import read_ledger
from ingest.pipeline import run_ingest
from robomirror.paths import DataLayout
from tests.conftest import TEST_CFG, copy_sample

MX = "motion/motion_generation/smplx322"  # the Motion-X++ layout: the one with videos
TEXTS = "text/semantic_label"


def _add_motionx(root: Path, good: str, name: str, motion: bytes | np.ndarray | None,
                 text: str | None = "a person walks", video: bytes | None = None) -> None:
    subset = good.split("/")[0]
    (root / MX / subset / f"{name}.npy").write_bytes(
        motion if isinstance(motion, bytes) else _npy(motion))
    if text is not None:
        (root / TEXTS / subset / f"{name}.txt").write_text(text)
    src_video = root / "video" / f"{good}.mp4"
    (root / "video" / subset / f"{name}.mp4").write_bytes(video if video is not None else src_video.read_bytes())


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _nymeria_variant(root: Path, good: Path, uid: str, edit) -> None:
    dest = root / good.name.replace(good.name.rsplit("_", 1)[1], uid)
    shutil.copytree(good, dest)
    edit(dest)


def test_malformed_inputs_each_get_one_ledger_line(ingested, small_sample, tmp_path):
    clean_layout, _ = ingested
    src = copy_sample(small_sample, tmp_path / "src")
    mx = src["motionx"]
    goods = sorted(str(p.relative_to(mx / MX).with_suffix("")) for p in (mx / MX).rglob("*.npy")
                   if (mx / "video" / p.relative_to(mx / MX).with_suffix(".mp4")).is_file())
    good = np.load(mx / MX / f"{goods[1]}.npy")
    long_good = max(goods, key=lambda g: len(np.load(mx / MX / f"{g}.npy")))
    expect: dict[str, str] = {}

    def add(name, reason, motion, **kw):
        _add_motionx(mx, kw.pop("base", goods[1]), name, motion, **kw)
        expect[name] = reason

    add("bad_width", "bad_shape", good[:, :300])
    nan = good.copy()
    nan[5, 10] = np.nan
    add("has_nan", "non_finite", nan)
    inf = good.copy()
    inf[3, 320] = np.inf
    add("has_inf", "non_finite", inf)
    add("zero_frames", "empty", np.zeros((0, 322), np.float32))
    add("int_dtype", "bad_dtype", good.astype(np.int32))
    add("object_array", "bad_dtype", np.array([{"code": "would run"}], dtype=object))
    add("no_text", "missing_text", good, text=None)
    add("empty_text", "missing_text", good, text="  \n")
    add("too_short", "too_short", good[:30])
    add("truncated_npy", "bad_shape", _npy(good)[:-1000])
    long_src = np.load(mx / MX / f"{long_good}.npy")
    short_good = min(goods, key=lambda g: len(np.load(mx / MX / f"{g}.npy")))
    short_video = (mx / "video" / f"{short_good}.mp4").read_bytes()  # a shorter motion's video
    add("truncated_video", "video_truncated", long_src, video=short_video, base=long_good)
    add("garbage_video", "video_unreadable", good, video=b"\x00not an mp4" * 100)
    add("cut_video", "video_unreadable", good, video=(mx / "video" / f"{goods[1]}.mp4").read_bytes()[:2000])

    ny = src["nymeria"]
    good_seq = sorted(ny.iterdir())[0]

    def non_monotonic(d):
        z = dict(np.load(d / "body/xdata_smpl_neutral.npz"))
        # a clock that jumps back 1 s: beyond what the official loader's step repair accepts (10 ms);
        # a duplicated stamp or a few-ms glitch is repaired instead (the sample has both)
        z["timestamps"][100:] -= 1_000_000
        np.savez(d / "body/xdata_smpl_neutral.npz", **z)

    def bad_csv(d):
        (d / "narration/atomic_action.csv").write_text("start_time,end_time,Describe my atomic actions\nsoon,later,C walks\n")

    def bad_body_pose(d):
        z = dict(np.load(d / "body/xdata_smpl_neutral.npz"))
        z["body_pose"] = z["body_pose"][:, :60]
        np.savez(d / "body/xdata_smpl_neutral.npz", **z)

    # (a sequence without narration is not bad input: it gives motion-only clips, test_nymeria_downloads.py)
    for uid, reason, edit in (("mono01", "non_monotonic_time", non_monotonic), ("badcsv", "bad_csv", bad_csv),
                              ("bpose1", "bad_shape", bad_body_pose)):
        _nymeria_variant(ny, good_seq, uid, edit)
        expect[uid] = reason
    # an EgoBody-style sequence flipped upside down half-way: refused, not guessed
    from ingest.sample.motions import Segment
    from ingest.sample.write import MotionXItem, write_motionx

    write_motionx(mx, MotionXItem("EgoBody", "flipped_half", Segment("walk_forward", 4.0, 1.0), 0.0,
                                  video=False, orientation="flip_half"), 64)
    expect["flipped_half"] = "inconsistent_orientation"
    # a source name with odd characters is not bad input: it must ingest under a safe member name
    _add_motionx(mx, goods[1], "wälk 01; rm -rf", good)

    layout = DataLayout(tmp_path / "data")
    summary = run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    ledger = read_ledger(layout.ledger("ingest"))
    got = {}
    for f in ledger:
        key = f.sequence if f.dataset == "motionx" else f.sequence.rsplit("_", 1)[1]
        got[key] = f.reason
        assert f.detail and f.path  # one clear reason per bad input
    assert got == expect
    assert len(ledger) == len(expect) >= 10
    # every clip of the clean run is still there, plus the oddly named good one
    clean = set(pq.read_table(clean_layout.manifest("ingest", "motionx")).column("clip_id").to_pylist())
    now = pq.read_table(layout.manifest("ingest", "motionx")).to_pylist()
    assert clean <= {r["clip_id"] for r in now}
    assert any(r["sequence"] == "wälk 01; rm -rf" for r in now)
    clean_ny = set(pq.read_table(clean_layout.manifest("ingest", "nymeria")).column("clip_id").to_pylist())
    assert clean_ny == set(pq.read_table(layout.manifest("ingest", "nymeria")).column("clip_id").to_pylist())
    assert summary.failed == len(expect)
