"""The LanceDB store: refused batches leave the version alone; re-running adds no rows."""

from __future__ import annotations

import numpy as np
import pytest

from latents.store import CLIPS, MOTION_DIM, Store, StoreError
from latents.text import TEXT_DIM


def _row(i: int, **kw) -> dict:
    rng = np.random.default_rng(i)
    r = {"clip_id": f"c{i:03d}", "dataset": "motionx", "text": f"clip {i}",
         "motion_latent": rng.normal(size=MOTION_DIM).tolist(), "text_emb": rng.normal(size=TEXT_DIM).tolist()}
    r.update(kw)
    return r


def test_upsert_is_idempotent(tmp_path):
    store = Store(tmp_path / "store")
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
])
def test_bad_rows_are_refused_and_the_version_does_not_move(tmp_path, bad, message):
    store = Store(tmp_path / "store")
    store.upsert(CLIPS, [_row(0)])
    before = store.version(CLIPS)
    rows = [_row(1), _row(2)]
    bad(rows[1])
    with pytest.raises(StoreError, match=message):
        store.upsert(CLIPS, rows)
    assert store.version(CLIPS) == before and store.count(CLIPS) == 1  # not even the good row


def test_duplicate_keys_in_a_batch_are_refused(tmp_path):
    with pytest.raises(StoreError, match="duplicate clip_id"):
        Store(tmp_path / "s").upsert(CLIPS, [_row(1), _row(1)])


def test_nearest_on_constructed_latents_returns_known_order(tmp_path):
    from catalog.nearest import nearest
    from robomirror.paths import DataLayout

    layout = DataLayout(tmp_path)
    base = np.zeros(MOTION_DIM)
    base[0] = 1.0
    rows = []
    for i, angle in enumerate([0.0, 0.1, 0.4, 0.9, 1.5]):  # increasing angle from the query
        v = np.zeros(MOTION_DIM)
        v[0], v[1] = np.cos(angle), np.sin(angle)
        rows.append(_row(i, motion_latent=v.tolist(), dataset="nymeria" if i == 2 else "motionx"))
    Store(layout.store_dir).upsert(CLIPS, rows)
    hits = nearest(layout, clip="c000", space="motion", k=3)
    assert [h.clip_id for h in hits] == ["c001", "c002", "c003"]
    assert hits[0].distance < hits[1].distance < hits[2].distance
    only = nearest(layout, clip="c000", space="motion", k=3, where="dataset = 'motionx'")
    assert [h.clip_id for h in only] == ["c001", "c003", "c004"]


def test_indexes_and_compaction(tmp_path):
    store = Store(tmp_path / "store")
    for i in range(4):  # four builds -> several versions
        store.upsert(CLIPS, [_row(j, text=f"v{i}") for j in range(6)])
    built = store.ensure_indexes(ann_min_rows=5)
    assert {"bitmap:dataset", "ivf_pq:motion_latent", "ivf_pq:text_emb"} <= set(built)
    names = {i.name if hasattr(i, "name") else str(i) for i in store.table(CLIPS).list_indices()}
    assert len(names) >= 5
    before, after = store.compact()[CLIPS]
    assert after < before and store.count(CLIPS) == 6  # old versions gone, rows kept
