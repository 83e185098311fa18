"""The LanceDB store: refused batches leave the version alone; re-running adds no rows."""

from __future__ import annotations

import numpy as np
import pytest

from latents.store import CLIPS, MOTION_DIM, VIDEO_TOKENS, Store, StoreError
from latents.text import TEXT_DIM

VDIM = 64  # the tiny VLM's hidden size (Qwen3-VL-4B: 2560); lancedb treats widths this large as vectors


def _row(i: int, **kw) -> dict:
    rng = np.random.default_rng(i)
    r = {"clip_id": f"c{i:03d}", "dataset": "motionx", "text": f"clip {i}",
         "motion_latent": rng.normal(size=MOTION_DIM).tolist(), "text_emb": rng.normal(size=TEXT_DIM).tolist(),
         "video_latent": rng.normal(size=VDIM).tolist()}
    r.update(kw)
    return r


def test_upsert_is_idempotent(tmp_path):
    store = Store(tmp_path / "store", video_dim=VDIM)
    assert store.upsert(CLIPS, [_row(i) for i in range(5)]) == 5
    assert store.upsert(CLIPS, [_row(i) for i in range(5)]) == 0
    assert store.upsert(CLIPS, [_row(i, text="changed") for i in range(3, 7)]) == 2
    assert store.count(CLIPS) == 7
    texts = {r["clip_id"]: r["text"] for r in store.table(CLIPS).search().limit(10).to_list()}
    assert texts["c004"] == "changed" and texts["c000"] == "clip 0"


@pytest.mark.parametrize("bad, message", [
    (lambda r: r.update(motion_latent=[float("nan")] * MOTION_DIM), "NaN or inf"),
    (lambda r: r.update(text_emb=[0.0] * 10), "expected \\(384,\\)"),
    (lambda r: r.update(clip_id=None), "no clip_id"),
    (lambda r: r.update(video_latent=[0.0] * (VDIM + 1)), "video_latent has shape \\(65,\\)"),
    (lambda r: r.update(video_latent=[float("inf")] * VDIM), "video_latent has NaN or inf"),
])
def test_bad_rows_are_refused_and_the_version_does_not_move(tmp_path, bad, message):
    store = Store(tmp_path / "store", video_dim=VDIM)
    store.upsert(CLIPS, [_row(0)])
    before = store.version(CLIPS)
    rows = [_row(1), _row(2)]
    bad(rows[1])
    with pytest.raises(StoreError, match=message):
        store.upsert(CLIPS, rows)
    assert store.version(CLIPS) == before and store.count(CLIPS) == 1  # not even the good row


def test_duplicate_keys_in_a_batch_are_refused(tmp_path):
    with pytest.raises(StoreError, match="duplicate clip_id"):
        Store(tmp_path / "s", video_dim=VDIM).upsert(CLIPS, [_row(1), _row(1)])


@pytest.mark.parametrize("space, col, dim", [("motion", "motion_latent", MOTION_DIM), ("video", "video_latent", VDIM)])
def test_nearest_on_constructed_latents_returns_known_order(tmp_path, space, col, dim):
    from catalog.nearest import nearest
    from robomirror.paths import DataLayout

    layout = DataLayout(tmp_path)
    rows = []
    for i, angle in enumerate([0.0, 0.1, 0.4, 0.9, 1.5]):  # increasing angle from the query
        v = np.zeros(dim)
        v[0], v[1] = np.cos(angle), np.sin(angle)
        rows.append(_row(i, **{col: v.tolist()}, dataset="nymeria" if i == 2 else "motionx"))
    rows.append(_row(5, video_latent=None))  # no video: never a video-space neighbour
    Store(layout.store_dir, video_dim=VDIM).upsert(CLIPS, rows)
    hits = nearest(layout, clip="c000", space=space, k=3)
    assert [h.clip_id for h in hits] == ["c001", "c002", "c003"]
    assert hits[0].distance < hits[1].distance < hits[2].distance
    only = nearest(layout, clip="c000", space=space, k=3, where="dataset = 'motionx'")
    assert [h.clip_id for h in only][:2] == ["c001", "c003"]
    if space == "video":
        assert "c005" not in [h.clip_id for h in nearest(layout, clip="c000", space="video", k=10)]


def test_indexes_and_compaction(tmp_path):
    store = Store(tmp_path / "store", video_dim=VDIM)
    for i in range(4):  # four builds -> several versions
        store.upsert(CLIPS, [_row(j, text=f"v{i}") for j in range(6)])
    built = store.ensure_indexes(ann_min_rows=5)
    assert {"bitmap:dataset", "ivf_pq:motion_latent", "ivf_pq:text_emb"} <= set(built)
    names = {i.name if hasattr(i, "name") else str(i) for i in store.table(CLIPS).list_indices()}
    assert len(names) >= 5
    before, after = store.compact()[CLIPS]
    assert after < before and store.count(CLIPS) == 6  # old versions gone, rows kept


def test_a_clip_without_video_has_a_null_video_latent(tmp_path):
    store = Store(tmp_path / "store", video_dim=VDIM)
    store.upsert(CLIPS, [_row(0, video_latent=None), _row(1)])
    got = {r["clip_id"]: r["video_latent"] for r in store.table(CLIPS).search().limit(5).to_list()}
    assert got["c000"] is None and len(got["c001"]) == VDIM


def test_video_tokens_are_checked_for_width_and_values(tmp_path):
    store = Store(tmp_path / "store", video_dim=VDIM)
    good = {"clip_id": "c000", "vlm_id": "v", "n_tokens": 3, "tokens": np.ones((3, VDIM), np.float16).tolist()}
    store.upsert(VIDEO_TOKENS, [good])
    before = store.version(VIDEO_TOKENS)
    for tokens, message in [(np.ones((3, VDIM + 2)), "expected \\('n', 64\\)"), (np.zeros((0, VDIM)), "tokens has shape \\(0,\\)"),
                            (np.full((2, VDIM), np.nan), "NaN or inf")]:
        with pytest.raises(StoreError, match=message):
            store.upsert(VIDEO_TOKENS, [{**good, "clip_id": "c001", "tokens": tokens.tolist()}])
    assert store.version(VIDEO_TOKENS) == before and store.count(VIDEO_TOKENS) == 1


def test_one_store_holds_one_vlm_width(tmp_path):
    Store(tmp_path / "store", video_dim=VDIM).upsert(CLIPS, [_row(0)])
    assert Store(tmp_path / "store").video_dim == VDIM  # read back from the table
    with pytest.raises(StoreError, match="holds video latents of width 64, but this VLM makes 16"):
        Store(tmp_path / "store", video_dim=16)


def test_a_store_from_an_older_build_is_refused_with_what_to_do(tmp_path):
    import lancedb
    import pyarrow as pa

    lancedb.connect(str(tmp_path / "store")).create_table(
        CLIPS, schema=pa.schema([pa.field("clip_id", pa.string()), pa.field("motion_latent", pa.list_(pa.float32(), 4))]))
    with pytest.raises(StoreError, match="older build .* delete it"):
        Store(tmp_path / "store", video_dim=VDIM)
