"""Scene columns of the latent store (issue 22): ground, scene_id, scene_kind, scene_bounds_m are additive
columns of `clips`, queryable in SQL over `store_clips`; a store built before them gains them (null) on
its next write and reads with them null until then; the latents build fills them from the retarget
manifest row and the stored scene."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from catalog.sql import query
from ingest.sample.scenes import bench_boxes, stair_boxes
from ingest.scene import scene_from_boxes, store_scene
from latents.pipeline import scene_columns
from latents.store import CLIPS, MOTION_DIM, SCENE_FIELDS, Store, schemas
from latents.text import TEXT_DIM
from robomirror.paths import DataLayout

VDIM = 64


def _row(i: int, **kw) -> dict:
    rng = np.random.default_rng(i)
    return {"clip_id": f"c{i:03d}", "dataset": "holosoma_climb", "text": f"clip {i}",
            "motion_latent": rng.normal(size=MOTION_DIM).tolist(), "text_emb": rng.normal(size=TEXT_DIM).tolist(),
            "video_latent": None, **kw}


def test_scene_columns_from_the_manifest_row_and_the_stored_scene(tmp_path):
    layout = DataLayout(tmp_path)
    stairs = scene_from_boxes(stair_boxes(), kind="stairs")
    sid = store_scene(layout.root, stairs)
    bounds: dict = {}
    cols = scene_columns(layout, {"ground": "scene", "scene_id": sid, "scene_kind": "stairs"}, bounds)
    lo, hi = stairs.bounds_m
    assert cols == {"ground": "scene", "scene_id": sid, "scene_kind": "stairs", "scene_bounds_m": [*lo, *hi]}
    assert cols["scene_bounds_m"][5] == np.float32(0.6)  # the top landing, 4 x 0.15 m
    flat = scene_columns(layout, {"ground": None}, bounds)  # a manifest from before issue 22
    assert flat == {"ground": "flat", "scene_id": None, "scene_kind": None, "scene_bounds_m": None}


def test_where_scene_kind_selects_scene_clips_over_the_store(tmp_path):
    layout = DataLayout(tmp_path)
    stairs, bench = scene_from_boxes(stair_boxes(), kind="stairs"), scene_from_boxes(bench_boxes(), kind="bench")
    rows, bounds = [], {}
    for i, sc in enumerate([stairs, bench, None]):
        rt = {"ground": "flat"} if sc is None else {"ground": "scene", "scene_id": store_scene(layout.root, sc),
                                                    "scene_kind": sc.kind}
        rows.append(_row(i, **scene_columns(layout, rt, bounds)))
    Store(layout.store_dir, video_dim=VDIM).upsert(CLIPS, rows)
    got = query(layout, "SELECT clip_id, scene_id, scene_bounds_m[6] AS top FROM store_clips "
                        "WHERE scene_kind = 'stairs'").fetchall()
    assert got == [("c000", stairs.scene_id, float(np.float32(0.6)))]
    by_ground = dict(query(layout, "SELECT ground, count(*) FROM store_clips GROUP BY ground").fetchall())
    assert by_ground == {"scene": 2, "flat": 1}


def test_a_store_from_before_the_scene_columns_reads_and_then_gains_them(tmp_path):
    layout = DataLayout(tmp_path)
    old = pa.schema([f for f in schemas(VDIM)[CLIPS] if f.name not in {g.name for g in SCENE_FIELDS}])
    import lancedb

    db = lancedb.connect(str(layout.store_dir))
    db.create_table(CLIPS, schema=old).add(pa.Table.from_pylist([_row(0)], schema=old), on_bad_vectors="null")
    # read as it is: SQL sees the scene columns as null, and reading writes nothing
    assert query(layout, "SELECT count(*) FROM store_clips WHERE scene_kind IS NULL").fetchone() == (1,)
    store = Store(layout.store_dir, video_dim=VDIM)
    assert "scene_kind" not in store.table(CLIPS).schema.names
    store.upsert(CLIPS, [_row(1, ground="scene", scene_id="abc", scene_kind="bench",
                              scene_bounds_m=[0.0, 0.0, 0.0, 1.0, 1.0, 0.45])])
    assert {f.name for f in SCENE_FIELDS} <= set(store.table(CLIPS).schema.names)
    got = dict(query(layout, "SELECT clip_id, scene_kind FROM store_clips").fetchall())
    assert got == {"c000": None, "c001": "bench"}  # the old row kept, its scene columns null
