"""`latents build` over retargeted shards: rows with provenance, idempotent, queryable by SQL and nearest."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from catalog.nearest import nearest
from catalog.sql import query
from latents.motion_vae import VAEConfig
from latents.pipeline import run_latents
from latents.store import VIDEO_TOKENS, Store
from robomirror.paths import DataLayout
from robomirror.shards import find_sample
from tests.conftest import LATENTS_VAE_KW


def test_build_twice_and_query(latents_built):
    layout, first = latents_built
    n = sum(pq.read_metadata(p).num_rows for p in layout.root.glob("shards/retarget/*/manifest.parquet"))
    motion_only = sum(v == "motion_only" for p in layout.root.glob("shards/ingest/*/manifest.parquet")
                      for v in pq.read_table(p).column("view").to_pylist())
    assert motion_only > 0  # Motion-X v1 / mocap subsets: no video, null video columns
    assert first.clips == first.inserted == n and first.clips_without_video == motion_only
    assert first.vlm_id.startswith("tiny-random-qwen3vl-") and first.video_dim == 64
    second = run_latents(layout, vae_cfg=VAEConfig(**LATENTS_VAE_KW))
    assert second.inserted == 0 and second.clips == n and second.vae_id == first.vae_id
    assert second.vlm_id == first.vlm_id and Store(layout.store_dir).count(VIDEO_TOKENS) == n - motion_only
    rows = query(layout, "SELECT s.clip_id, s.vae_id, r.stable, s.text, s.vlm_id, len(s.video_latent), s.video_frames "
                         "FROM store_clips s JOIN retarget r USING (clip_id) JOIN clips c USING (clip_id)").fetchall()
    assert len(rows) == n and all(r[1] == first.vae_id for r in rows) and all(r[3] for r in rows)
    with_video = [r for r in rows if r[5] is not None]
    assert len(with_video) == n - motion_only  # motion-only clips: null video columns
    assert all(r[4] == first.vlm_id and r[5] == 64 and r[6] >= 4 for r in with_video)
    top = query(layout, "SELECT b.clip_id, array_cosine_similarity(a.motion_latent, b.motion_latent) AS s "
                        "FROM store_clips a, store_clips b WHERE a.clip_id = (SELECT min(clip_id) FROM store_clips) "
                        "ORDER BY s DESC LIMIT 1").fetchone()
    assert abs(top[1] - 1.0) < 1e-5  # a clip is its own nearest neighbour
    hits = nearest(layout, clip=rows[0][0], space="motion", k=3)
    assert len(hits) == 3 and rows[0][0] not in [h.clip_id for h in hits]
    video_hits = nearest(layout, clip=with_video[0][0], space="video", k=3)
    assert len(video_hits) == 3 and all(h.distance >= 0 for h in video_hits)
    text_hits = nearest(layout, text="a person jogs forward", space="text", k=2)
    assert len(text_hits) == 2
    from catalog.report import build_report

    page = build_report(layout).read_text()
    assert page.count("data:image/png;base64,") == 5 and "Motion latents" in page
    assert f"Video latents ({first.vlm_id}) — tiny random VLM: plumbing, not a measurement" in page


def test_a_video_file_finds_its_own_clip(latents_built, tmp_path):
    """--video embeds a file with the store's VLM and prompt: the clip it came from comes back first."""
    layout, _ = latents_built
    clip, view = query(layout, "SELECT clip_id, view FROM store_clips WHERE view != 'motion_only' ORDER BY clip_id DESC LIMIT 1").fetchone()
    video = tmp_path / "query.mp4"
    video.write_bytes(find_sample(layout.root, "ingest", clip)["video.mp4"])
    hits = nearest(layout, video=video, space="video", view=view, k=3)
    assert hits[0].clip_id == clip and hits[0].distance < 1e-3 < hits[1].distance


def test_ray_embedding_matches_serial(retargeted, tmp_path):
    src, _ = retargeted
    cfg = VAEConfig(feature_dim=148, layers=1, ff_dim=256, steps=10)
    out = {}
    for ex in ("serial", "ray"):
        layout = DataLayout(tmp_path / ex)
        shutil.copytree(src.root / "shards", layout.root / "shards")
        run_latents(layout, vae_cfg=cfg, executor=ex, num_cpus=2)
        out[ex] = {r[0]: (r[1], r[2]) for r in query(layout, "SELECT clip_id, motion_latent, video_latent "
                                                             "FROM store_clips").fetchall()}
    assert out["serial"].keys() == out["ray"].keys()
    for k in out["serial"]:
        for a, b in zip(out["serial"][k], out["ray"][k], strict=True):
            assert (a is None) == (b is None)  # a motion-only clip has no video latent on either path
            if a is not None:
                assert np.abs(np.asarray(a) - np.asarray(b)).max() < 1e-5


def test_the_summary_names_the_store_the_models_and_the_pages(latents_built, tmp_path):
    from rich.console import Console

    from catalog.summary import print_summary

    layout, built = latents_built
    page = tmp_path / "nearest.html"
    page.write_text("<html></html>")
    console = Console(record=True, width=400)
    print_summary(layout, [page, tmp_path / "missing.html"], console)
    text = console.export_text()
    assert str(layout.store_dir) in text and built.vlm_id in text and "plumbing, not a measurement" in text
    assert f"nearest-neighbour page │ {page}" in text and "missing.html" not in text
    assert f"clips {built.clips} rows" in text


def test_an_unreadable_video_is_a_ledger_row_not_a_lost_clip(retargeted, tmp_path):
    """One clip's video is garbage: the build goes on, the clip keeps its motion and text latents with a
    null video latent, and the ledger says which clip and why."""
    import tarfile

    from robomirror.tario import read_tar, write_tar

    src, _ = retargeted
    layout = DataLayout(tmp_path / "d")
    shutil.copytree(src.root / "shards", layout.root / "shards")
    shard = next(p for p in sorted(layout.root.glob("shards/ingest/*/shard-*.tar"))
                 if any(n.endswith(".video.mp4") for n, _ in read_tar(str(p))))
    members = list(read_tar(str(shard)))
    bad = next(n for n, _ in members if n.endswith(".video.mp4"))
    with open(shard, "wb") as f:
        write_tar(f, [(n, b"\x00not an mp4" if n == bad else d) for n, d in members])
    assert tarfile.open(shard).extractfile(bad).read() == b"\x00not an mp4"
    s = run_latents(layout, vae_cfg=VAEConfig(feature_dim=148, layers=1, ff_dim=256, steps=5))
    clip = bad.split(".")[0]
    assert s.failures == 1 and s.clips == sum(pq.read_metadata(p).num_rows
                                              for p in layout.root.glob("shards/retarget/*/manifest.parquet"))
    ledger = pq.read_table(layout.ledger("latents")).to_pylist()
    assert [(r["sequence"], r["reason"]) for r in ledger] == [(clip, "video_unreadable")]
    row = query(layout, f"SELECT video_latent IS NULL, vlm_id IS NULL, len(motion_latent) FROM store_clips "
                        f"WHERE clip_id = '{clip}'").fetchone()
    assert row == (True, True, 256)
    assert query(layout, "SELECT count(*) FROM failures WHERE stage = 'latents'").fetchone()[0] == 1


def test_a_half_written_vae_checkpoint_is_rebuilt(latents_built, tmp_path):
    """One of the two checkpoint files missing (a crash between them): the next build rewrites it and
    embeds every clip, instead of failing every shard forever."""
    src, first = latents_built
    layout = DataLayout(tmp_path / "d")
    shutil.copytree(src.root, layout.root)
    ckpt = layout.store_dir / "models" / first.vae_id
    (ckpt / "config.json").unlink()
    s = run_latents(layout, vae_cfg=VAEConfig(**LATENTS_VAE_KW))
    assert s.vae_id == first.vae_id  # the same (deterministic) weights: the same checkpoint folder
    assert (ckpt / "config.json").is_file()
    assert s.clips == first.clips > 0 and s.failures == 0


def test_the_store_holds_one_model_generation(latents_built, tmp_path):
    """Orphan rows (their clip left the shards) made by another VAE: the build refuses, nearest and the
    summary see the mix, and --prune removes them."""
    from catalog.nearest import NearestError
    from catalog.sql import store_models
    from latents.store import CLIPS, StoreError

    src, first = latents_built
    layout = DataLayout(tmp_path / "d")
    shutil.copytree(src.root, layout.root)
    store = Store(layout.store_dir)
    row = store.table(CLIPS).to_arrow().slice(0, 1).to_pylist()[0]
    row.update(clip_id="orphan0000000000000", vae_id="motion-vae-oldgeneration")
    Store(layout.store_dir, video_dim=first.video_dim).upsert(CLIPS, [row])
    assert "(MIXED)" in store_models(layout)[0]  # the summary names the mix, not one stale id
    with pytest.raises(NearestError, match="mixes model generations"):
        nearest(layout, text="a person walks", space="text", k=2)
    before = Store(layout.store_dir).version(CLIPS)
    with pytest.raises(StoreError, match="--prune"):
        run_latents(layout, vae_cfg=VAEConfig(**LATENTS_VAE_KW))
    assert Store(layout.store_dir).version(CLIPS) == before  # refused before writing a row
    s = run_latents(layout, vae_cfg=VAEConfig(**LATENTS_VAE_KW), prune=True)
    assert s.pruned == 1 and s.clips == first.clips
    assert store_models(layout)[0] == first.vae_id
    assert nearest(layout, text="a person walks", space="text", k=2)


def test_rows_duplicated_by_old_racing_builds_are_written_once_again(latents_built, tmp_path):
    """Builds that raced before the writer lock left two rows per clip; the next build leaves one."""
    import lance

    src, _ = latents_built
    layout = DataLayout(tmp_path / "d")
    shutil.copytree(src.root, layout.root)
    for name in ("clips", "motion_tokens"):
        path = str(layout.store_dir / f"{name}.lance")
        lance.write_dataset(lance.dataset(path).to_table().slice(0, 3), path, mode="append")  # 3 clips twice
    store = Store(layout.store_dir)
    assert len(store.duplicate_clip_ids()) == 3
    s = run_latents(layout, vae_dir=next((layout.store_dir / "models").iterdir()))
    assert s.deduplicated == 3 and Store(layout.store_dir).duplicate_clip_ids() == []
    ids = lance.dataset(str(layout.store_dir / "clips.lance")).to_table(columns=["clip_id"]).column(0).to_pylist()
    assert len(ids) == len(set(ids)) == s.clips
