"""`latents build` over retargeted shards: rows with provenance, idempotent, queryable by SQL and nearest."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq

from catalog.nearest import nearest
from catalog.sql import query
from latents.motion_vae import VAEConfig
from latents.pipeline import run_latents
from robomirror.paths import DataLayout


def test_build_twice_and_query(retargeted, tmp_path):
    src, _ = retargeted
    layout = DataLayout(tmp_path / "d")
    shutil.copytree(src.root / "shards", layout.root / "shards")
    cfg = VAEConfig(feature_dim=148, layers=1, ff_dim=256, steps=30)
    first = run_latents(layout, vae_cfg=cfg)
    n = sum(pq.read_metadata(p).num_rows for p in layout.root.glob("shards/retarget/*/manifest.parquet"))
    assert first.clips == first.inserted == n
    second = run_latents(layout, vae_cfg=cfg)
    assert second.inserted == 0 and second.clips == n and second.vae_id == first.vae_id
    rows = query(layout, "SELECT s.clip_id, s.vae_id, r.stable, s.text FROM store_clips s "
                         "JOIN retarget r USING (clip_id) JOIN clips c USING (clip_id)").fetchall()
    assert len(rows) == n and all(r[1] == first.vae_id for r in rows) and all(r[3] for r in rows)
    top = query(layout, "SELECT b.clip_id, array_cosine_similarity(a.motion_latent, b.motion_latent) AS s "
                        "FROM store_clips a, store_clips b WHERE a.clip_id = (SELECT min(clip_id) FROM store_clips) "
                        "ORDER BY s DESC LIMIT 1").fetchone()
    assert abs(top[1] - 1.0) < 1e-5  # a clip is its own nearest neighbour
    hits = nearest(layout, clip=rows[0][0], space="motion", k=3)
    assert len(hits) == 3 and rows[0][0] not in [h.clip_id for h in hits]
    text_hits = nearest(layout, text="a person jogs forward", space="text", k=2)
    assert len(text_hits) == 2
    from catalog.report import build_report

    page = build_report(layout).read_text()
    assert page.count("data:image/png;base64,") == 4 and "Motion latents" in page


def test_ray_embedding_matches_serial(retargeted, tmp_path):
    src, _ = retargeted
    cfg = VAEConfig(feature_dim=148, layers=1, ff_dim=256, steps=10)
    out = {}
    for ex in ("serial", "ray"):
        layout = DataLayout(tmp_path / ex)
        shutil.copytree(src.root / "shards", layout.root / "shards")
        run_latents(layout, vae_cfg=cfg, executor=ex, num_cpus=2)
        out[ex] = {r[0]: r[1] for r in query(layout, "SELECT clip_id, motion_latent FROM store_clips").fetchall()}
    assert out["serial"].keys() == out["ray"].keys()
    for k in out["serial"]:
        assert max(abs(a - b) for a, b in zip(out["serial"][k], out["ray"][k], strict=True)) < 1e-5
