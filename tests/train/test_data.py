"""Training data: the split by sequence recorded in the store, pinned reads, the map-style dataset."""

from __future__ import annotations

import shutil

import lance
import numpy as np
import pytest

from latents.store import CLIPS, VIDEO_TOKENS
from train.data import (
    ClipDataset,
    DataError,
    SplitConfig,
    collate,
    compute_split,
    ensure_split,
    load_split,
    pin_store,
    sequence_key,
    tokens_from_arrow,
)


@pytest.fixture
def store(latents_built, tmp_path):
    layout, _ = latents_built
    shutil.copytree(layout.store_dir, tmp_path / "store")
    return tmp_path / "store"


def _rows(store):
    return lance.dataset(str(store / f"{CLIPS}.lance")).to_table(
        columns=["clip_id", "dataset", "subset", "sequence", "view"]).to_pylist()


def test_split_is_by_sequence_deterministic_and_recorded(store):
    rows = _rows(store)
    split = ensure_split(store, SplitConfig())
    sides = {}
    for r in rows:
        sides.setdefault(sequence_key(r), set()).add(split.side[r["clip_id"]])
    assert all(len(s) == 1 for s in sides.values())  # no sequence on both sides
    assert {"train", "test"} == {s for v in sides.values() for s in v}
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["view"]), set()).add(sequence_key(r))
    for members in groups.values():  # stratified: each (dataset, view) group is split 8:2 on its own
        n_test = sum(sides[k] == {"test"} for k in members)
        assert n_test == (min(max(1, round(0.2 * len(members))), len(members) - 1) if len(members) > 1 else 0)
    assert ensure_split(store, SplitConfig()) == split  # idempotent ...
    assert lance.dataset(str(store / "splits.lance")).count_rows() == len(rows)  # ... and written once
    assert load_split(store, split.split_id) == split
    other = ensure_split(store, SplitConfig(seed=1))
    assert other.split_id != split.split_id and load_split(store, split.split_id) == split
    with pytest.raises(DataError, match="no split 'nope'"):
        load_split(store, "nope")


def test_split_refuses_a_single_sequence():
    with pytest.raises(DataError, match="at least 2 sequences"):
        compute_split([{"clip_id": "a", "dataset": "d", "subset": "s", "sequence": "x"}], SplitConfig())


def test_pinned_reads_do_not_see_a_growing_store(store):
    split = ensure_split(store, SplitConfig())
    versions = pin_store(store, "r1")
    before = ClipDataset(store, versions, split, "train")
    # the store grows: a clip row is duplicated under a new id
    ds = lance.dataset(str(store / f"{CLIPS}.lance"))
    row = ds.to_table(filter=f"clip_id = '{before.clip_ids[0]}'")
    row = row.set_column(row.schema.get_field_index("clip_id"), "clip_id", [["grown"]])
    lance.write_dataset(row, str(store / f"{CLIPS}.lance"), mode="append")
    grown = {**split.side, "grown": "train"}
    again = ClipDataset(store, pin_store(store, "r1"), type(split)(split.split_id, grown), "train")
    assert again.clip_ids == before.clip_ids and "grown" not in again.skipped  # the pinned version lacks it
    fresh = ClipDataset(store, pin_store(store, "r2"), type(split)(split.split_id, grown), "train")
    assert "grown" in fresh.skipped  # a new pin sees it (skipped: it has no video tokens of its own)


def test_items_convert_the_float16_tokens_and_skip_clips_without_video(store):
    split = ensure_split(store, SplitConfig())
    ds = ClipDataset(store, pin_store(store, "r"), split, "train")
    assert len(ds) > 0
    item = ds[0]
    assert item["motion_tokens"].shape == (30, 256) and item["motion_latent"].shape == (256,)
    assert item["video_tokens"].shape[1] == item["video_latent"].shape[0] and item["text_emb"].shape == (384,)
    naive = lance.dataset(str(store / f"{VIDEO_TOKENS}.lance")).to_table(
        filter=f"clip_id = '{item['clip_id']}'", columns=["tokens"]).column(0)[0].as_py()
    assert np.allclose(item["video_tokens"].numpy(), np.array(naive, dtype=np.float32))
    # motion-only clips (no video) are skipped and named, not a crash
    with_video = {r["clip_id"] for r in lance.dataset(str(store / f"{CLIPS}.lance")).to_table(
        columns=["clip_id", "video_latent"]).to_pylist() if r["video_latent"] is not None}
    assert set(ds.clip_ids) <= with_video and set(ds.skipped).isdisjoint(with_video)
    assert set(ds.clip_ids) | set(ds.skipped) == set(split.clips("train"))
    batch = collate([ds[i] for i in range(min(3, len(ds)))])
    assert batch["video_mask"].sum(1).tolist() == [len(ds[i]["video_tokens"]) for i in range(min(3, len(ds)))]


def test_tokens_from_arrow_is_a_view():
    import pyarrow as pa

    arr = pa.array([[[1.0, 2.0], [3.0, 4.0]]], type=pa.list_(pa.list_(pa.float16(), 2)))
    out = tokens_from_arrow(arr[0])
    assert out.dtype == np.float16 and out.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_the_demo_sample_splits_into_at_least_64_test_clips_with_video():
    """Issue 21: the demo's sample (`python -m ingest sample` defaults) cut as the ingest cuts it, split by
    sequence at the demo's test fraction, leaves >= 64 test clips with video (R@k in pools of 32, with
    room for random pools) and keeps every sequence's clips on one side."""
    from ingest.clips import cut_spans
    from ingest.config import IngestConfig
    from ingest.sample import DEMO_MOTIONX_SHORT, DEMO_TEST_FRACTION
    from ingest.sample.corpus import SampleConfig, plan

    cfg = IngestConfig()  # the demo's ingest: 150-frame clips at 30 fps, 60-frame minimum
    mx, ny = plan(SampleConfig(n_motionx=12, n_nymeria=3, n_nymeria_no_video=1, n_motionx_short=DEMO_MOTIONX_SHORT))
    rows = []
    for seq, subset, seconds, video in ([(m.name, m.subset, m.segment.seconds, m.video) for m in mx]
                                        + [(n.folder, "", sum(s.seconds for s in n.segments), n.head_video) for n in ny]):
        ds, view = ("motionx", "third_person") if subset else ("nymeria", "egocentric")
        for k, _ in enumerate(cut_spans(int(seconds * 30), cfg)):
            rows.append({"clip_id": f"{ds}/{subset}/{seq}/{k}", "dataset": ds, "subset": subset, "sequence": seq,
                         "view": view if video else "motion_only"})
    split = compute_split(rows, SplitConfig(0, DEMO_TEST_FRACTION))
    video = {r["clip_id"] for r in rows if r["view"] != "motion_only"}
    test = [c for c in split.clips("test") if c in video]
    assert len(test) >= 64, len(test)
    assert len([c for c in split.clips("train") if c in video]) > len(test)  # most video clips still train
    sides = {}
    for r in rows:
        sides.setdefault(sequence_key(r), set()).add(split.side[r["clip_id"]])
    assert all(len(s) == 1 for s in sides.values())
