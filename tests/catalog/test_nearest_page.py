"""`nearest --html`: the page renders in headless Chromium and every video on it loads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from catalog.nearest import Query, describe, nearest
from catalog.nearest_page import write_nearest_page


def _chromium() -> str:
    for b in (os.environ.get("ROBOMIRROR_CHROMIUM"), "chromium", "chromium-browser"):
        if b and shutil.which(b):
            return shutil.which(b)
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: `make test` installs it (tools/ensure-chromium.sh)")
    pytest.skip("chromium not installed: `make test` installs it (tools/ensure-chromium.sh)")


def _load(page, out_dir) -> dict[str, int]:
    """Open the page headless and read what its script reports about the videos."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--mute-audio", "--allow-file-access-from-files",
             "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={out_dir}/profile"]
    dom = subprocess.run([_chromium(), *flags, "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    shot = out_dir / "page.png"
    subprocess.run([_chromium(), *flags, "--virtual-time-budget=3000", "--window-size=1100,1400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    m = re.search(r'id="video-status" data-loaded="(\d+)" data-failed="(\d+)"', dom)
    assert m, f"no video status in the page's DOM: {dom[:500]!r}"
    return {"loaded": int(m[1]), "failed": int(m[2]), "videos": dom.count("<video"), "dom": dom,
            "screenshot": shot.stat().st_size if shot.exists() else 0}


def test_the_nearest_page_renders_and_its_videos_load(latents_built, tmp_path):
    layout, summary = latents_built
    clip = nearest(layout, text="a person walks forward", space="text", k=1, where="view != 'motion_only'")[0].clip_id
    hits = nearest(layout, clip=clip, space="video", k=2)
    page = write_nearest_page(layout, Query("clip", clip, "video"), hits, tmp_path / "nn.html", describe(layout, clip))
    got = _load(page, tmp_path)
    assert got["videos"] == 2 * (1 + len(hits)) == 6  # source + G1 render for the query and each neighbour
    assert got["loaded"] == got["videos"] and got["failed"] == 0
    for h in hits:
        assert h.clip_id in got["dom"] and f"d = {h.distance:.4f}" in got["dom"]
    assert summary.vlm_id in got["dom"] and "plumbing, not a measurement" in got["dom"]
    assert got["screenshot"] > 10_000  # a page was painted

    # the check can fail: a broken video is reported as failed, not loaded
    (tmp_path / "nn_files" / f"{hits[0].clip_id}.g1.mp4").write_bytes(b"not a video")
    broken = _load(page, tmp_path)
    assert broken["failed"] == 1 and broken["loaded"] == got["videos"] - 1


def test_the_cli_answers_a_video_query_with_a_page(latents_built, tmp_path, capsys):
    from catalog.__main__ import main
    from catalog.sql import query
    from robomirror.shards import find_sample

    layout, _ = latents_built
    clip, view = query(layout, "SELECT clip_id, view FROM store_clips WHERE view != 'motion_only' ORDER BY clip_id LIMIT 1").fetchone()
    video = tmp_path / "mine.mp4"
    video.write_bytes(find_sample(layout.root, "ingest", clip)["video.mp4"])
    page = tmp_path / "q.html"
    rc = main(["--data-root", str(layout.root), "nearest", "--video", str(video), "--view", view,
               "--space", "video", "--k", "2", "--html", str(page)])
    out = capsys.readouterr().out
    assert rc == 0 and out.splitlines()[0].startswith(f" 1. {clip}  d=0.0000") and f"page: {page}" in out
    got = _load(page, tmp_path)
    assert got["videos"] == 1 + 2 * 2 and got["loaded"] == got["videos"]  # query video + 2 neighbours x 2
    assert main(["--data-root", str(layout.root), "nearest", "--video", str(video), "--space", "motion"]) == 2
    assert "no trained DiT" in capsys.readouterr().err  # video -> motion goes through a DiT: none trained here
