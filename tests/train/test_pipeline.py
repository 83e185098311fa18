"""`python -m train run` end to end on the test store: evaluator, DiT, the three-row table in the
store, v2m rows, the ledger, and video -> motion nearest through the trained DiT."""

from __future__ import annotations

import json
import shutil

import lance
import pytest

from robomirror.paths import DataLayout
from train.data import SplitConfig
from train.pipeline import TrainRunConfig, read_evals, run_train


@pytest.fixture(scope="module")
def trained(latents_built, tmp_path_factory):
    src, _ = latents_built
    layout = DataLayout(tmp_path_factory.mktemp("train") / "data")
    shutil.copytree(src.root, layout.root)
    cfg = TrainRunConfig(dit_steps=40, evaluator_steps=20, global_batch=4, eval_replications=3,
                         split=SplitConfig(seed=0))
    return layout, cfg, run_train(layout, cfg, progress=False)


def test_the_run_writes_the_table_v2m_and_ledger(trained):
    layout, cfg, s = trained
    assert set(s.table) == {"Real (ground truth)", "ours (DiT, velocity)", "shuffled video (floor)"}
    rows = read_evals(layout.store_dir, s.run_id)
    assert len(rows) == 3 * 6 and {r["metric"] for r in rows} == {"R@1", "R@2", "R@3", "MM-Dist", "FID", "Diversity"}
    assert all(r["dit_id"] == s.dit_id and r["evaluator_id"] == s.evaluator_id and r["split_id"] == s.split_id
               for r in rows)
    real_fid = next(r["value"] for r in rows if r["method"].startswith("Real") and r["metric"] == "FID")
    assert abs(real_fid) < 1e-3  # the real motions against themselves
    # the test store holds fewer than 32 test clips: rows say they are not a measurement, with the pool used
    assert s.n_test < 32 and not any(r["measured"] for r in rows)
    assert all(r["batch_size"] == s.n_test and r["ci_lo"] <= r["value"] + 1e-9 <= r["ci_hi"] + 2e-9
               for r in rows if r["metric"].startswith("R@"))
    assert all(r["interval"].startswith("95% percentile bootstrap") for r in rows)
    assert [v.metric for v in s.verdicts] == ["R@1", "R@2", "R@3", "MM-Dist", "FID"]
    v2m = lance.dataset(str(layout.store_dir / "v2m.lance")).to_table().to_pylist()
    assert len(v2m) == s.n_test + s.n_train  # test and train clips (the policy's student trains on the latter)
    assert all(r["dit_id"] == s.dit_id and len(r["tokens"]) == r["n_tokens"] for r in v2m)
    ledger = lance.dataset  # noqa: F841 - the ledger is parquet
    import pyarrow.parquet as pq

    led = pq.read_table(layout.ledger("train")).to_pylist()
    assert sorted(r["sequence"] for r in led) == s.skipped and all(r["reason"] == "no_video_tokens" for r in led)
    meta = json.loads((s.run_dir / "run.json").read_text())
    assert meta["store_versions"] == s.versions and meta["split_id"] == s.split_id
    assert list((s.run_dir / "tensorboard" / "dit").glob("events.out.tfevents.*"))


def test_the_printed_table_refuses_to_be_a_result_below_a_pool_of_32(trained):
    from rich.console import Console

    from train.report import print_summary

    _, _, s = trained
    console = Console(record=True, width=200)
    print_summary(s, console)
    out = console.export_text()
    assert "NOT A RESULT" in out and "not a measurement" in out and "pools of 32" in out
    assert f"chance (random ranking, pool of {s.n_test})" in out  # the chance level of the pool actually used
    assert "separated" in out  # a verdict line per metric, whatever it says
    assert "evaluator" in out and ("early-stopped" in out or "not early-stopped" in out)


def test_a_rerun_of_the_same_run_reuses_its_checkpoints_and_replaces_its_rows(trained):
    layout, cfg, s = trained
    again = run_train(layout, cfg, progress=False)
    assert again.run_id == s.run_id and again.dit_id == s.dit_id
    assert len(read_evals(layout.store_dir, s.run_id)) == 3 * 6


def test_video_to_motion_nearest_goes_through_the_dit(trained, tmp_path, capsys):
    from catalog.__main__ import main
    from catalog.sql import query
    from robomirror.shards import find_sample

    layout, _, s = trained
    clip, view = query(layout, "SELECT clip_id, view FROM store_clips WHERE view != 'motion_only' "
                               "ORDER BY clip_id LIMIT 1").fetchone()
    video = tmp_path / "q.mp4"
    video.write_bytes(find_sample(layout.root, "ingest", clip)["video.mp4"])
    rc = main(["--data-root", str(layout.root), "nearest", "--video", str(video), "--view", view, "--space", "motion",
               "--k", "3"])
    out = capsys.readouterr().out
    assert rc == 0 and len([ln for ln in out.splitlines() if ln.strip()[:2].rstrip(".").isdigit()]) == 3
    # a DiT trained on another VAE's latents is refused by name
    meta_path = s.run_dir / "run.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "vae_id": "motion-vae-other"}))
    try:
        rc = main(["--data-root", str(layout.root), "nearest", "--video", str(video), "--view", view,
                   "--space", "motion", "--dit-run", s.run_id])
        assert rc == 2 and "trained on VAE motion-vae-other" in capsys.readouterr().err
    finally:
        meta_path.write_text(json.dumps(meta))


def test_the_alignment_baseline_and_an_ablation_objective_run_through_the_same_loop(trained):
    from dataclasses import replace

    layout, cfg, s = trained
    align = run_train(layout, replace(cfg, method="align", dit_steps=20), progress=False)
    assert "ours (align baseline, InfoNCE)" in align.table and align.run_id != s.run_id
    assert (align.run_dir / "align" / "latest").is_file()
    x0 = run_train(layout, replace(cfg, objective="x0", dit_steps=20), progress=False)
    assert "ours (DiT, x0)" in x0.table
    rows = read_evals(layout.store_dir)
    assert {r["objective"] for r in rows} >= {"velocity", "x0", "align-infonce"}


def test_a_run_whose_store_changed_model_is_refused(trained):
    from train.data import DataError

    layout, cfg, s = trained
    meta_path = s.run_dir / "run.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "vae_id": "motion-vae-older"}))
    try:
        with pytest.raises(DataError, match="trained on VAE motion-vae-older"):
            run_train(layout, cfg, progress=False)
    finally:
        meta_path.write_text(json.dumps(meta))
