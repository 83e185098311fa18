"""A published clip leaves a generation only when the user asks (--prune).

Part of a source missing on a rerun (a modality folder moved away, a drive with the videos not mounted,
a Nymeria sequence's body/ folder, its narration or head recording) is an infrastructure condition:
`ingest run` exits 2 naming every missing path, and the published generation (shards, sidecars,
manifest), the ledger and the staging stay byte-identical. Putting the folder back gives the same
generation again; --prune republishes from what is on disk.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingest.pipeline import run_ingest
from robomirror.paths import DataLayout
from tests.conftest import TEST_CFG, copy_sample, run_module

MX_TEXT = ("text/semantic_label", "texts/semantic_labels")  # Motion-X++ and v1


@pytest.fixture(scope="module")
def published(tmp_path_factory, small_sample):
    """A data root with the small sample published (sources copied beside it)."""
    base = tmp_path_factory.mktemp("partial")
    src = copy_sample({ds: small_sample[ds] for ds in ("motionx", "nymeria")}, base / "src")  # what _cli names
    run_ingest(DataLayout(base / "data"), src, TEST_CFG, executor="serial", progress=False)
    return base


@pytest.fixture
def root(published, tmp_path):
    """A private copy of the published root and its sources: (sources, layout)."""
    shutil.copytree(published, tmp_path / "r")
    return {ds: tmp_path / "r" / "src" / ds for ds in ("motionx", "nymeria")}, DataLayout(tmp_path / "r" / "data")


def _everything(layout: DataLayout) -> dict[str, str]:
    """sha256 of every file the run may touch: shards, sidecars, manifests, ledger, staging."""
    return {str(p.relative_to(layout.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(layout.root.rglob("*")) if p.is_file() and p.name != ".writer.lock"}


def _cli(src: dict[str, Path], layout: DataLayout, *extra: str):
    return run_module("ingest", "--data-root", str(layout.root), "run", "--executor", "serial", "--no-progress",
                      "--shard-mb", str(TEST_CFG.shard_target_bytes / 1e6), "--motionx", str(src["motionx"]),
                      "--nymeria", str(src["nymeria"]), *extra)


def _rows(layout: DataLayout, ds: str) -> list[dict]:
    return pq.read_table(layout.manifest("ingest", ds)).to_pylist()


def _published_paths(layout: DataLayout, ds: str, role_prefix: str) -> set[str]:
    """Every source file of `role_prefix` the manifest says its clips were read from."""
    return {p for r in _rows(layout, ds) for role, p in json.loads(r["source_paths"]).items()
            if role.startswith(role_prefix)}


def _refused(src, layout, before, missing: set[str]) -> str:
    """Runs the CLI; asserts exit 2, every missing path named, and not one byte changed."""
    out = _cli(src, layout)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "nothing was published or retracted" in out.stderr and "--prune" in out.stderr, out.stderr
    for p in missing:
        assert p in out.stderr, (p, out.stderr)
    assert _everything(layout) == before
    return out.stderr


def _moved_back_is_identical(src, layout, before, moves: list[tuple[Path, Path]]) -> None:
    for a, b in moves:
        b.rename(a)
    out = _cli(src, layout)
    assert out.returncode == 0, out.stderr
    assert _everything(layout) == before


def test_motionx_text_folders_moved_away(root, tmp_path):
    src, layout = root
    before = _everything(layout)
    moves = [(src["motionx"] / rel.split("/")[0], tmp_path / f"away{i}") for i, rel in enumerate(MX_TEXT)]
    texts = _published_paths(layout, "motionx", "text")
    assert len(texts) == len({r["sequence"] for r in _rows(layout, "motionx")})  # every sequence had text
    for a, b in moves:
        a.rename(b)
    err = _refused(src, layout, before, {str(src["motionx"] / Path(p).relative_to(Path(p).parents[3]))
                                         for p in texts})
    assert f"{len(texts)} source files of published sequences are not found" in err
    _moved_back_is_identical(src, layout, before, moves)


def test_motionx_video_drive_not_mounted(root, tmp_path):
    src, layout = root
    before = _everything(layout)
    videos = _published_paths(layout, "motionx", "video")
    third_person = [r for r in _rows(layout, "motionx") if r["view"] == "third_person"]
    assert videos and third_person
    (src["motionx"] / "video").rename(tmp_path / "unmounted")
    _refused(src, layout, before, {str(src["motionx"] / "video" / Path(p).relative_to(Path(p).parents[1]))
                                   for p in videos})
    # --prune is the user asking: those clips are rebuilt motion-only
    out = _cli(src, layout, "--prune")
    assert out.returncode == 0, out.stderr
    views = {r["view"] for r in _rows(layout, "motionx")}
    assert "third_person" not in views and _rows(layout, "motionx")


@pytest.mark.parametrize("part", ["body", "narration", "recording_head"])
def test_a_nymeria_sequence_loses_a_folder_it_was_published_with(root, tmp_path, part):
    src, layout = root
    rows = _rows(layout, "nymeria")
    seq = next(r["sequence"] for r in rows if r["view"] == "egocentric" and r["text"])  # has all three
    n_clips = sum(r["sequence"] == seq for r in rows)
    paths = {p for r in rows if r["sequence"] == seq for role, p in json.loads(r["source_paths"]).items()
             if f"/{part}/" in p}
    assert paths
    before = _everything(layout)
    folder = src["nymeria"] / seq / part
    folder.rename(tmp_path / "away")
    err = _refused(src, layout, before, {str(src["nymeria"] / seq / part / Path(p).name) for p in paths})
    assert seq in err
    _moved_back_is_identical(src, layout, before, [(folder, tmp_path / "away")])
    assert sum(r["sequence"] == seq for r in _rows(layout, "nymeria")) == n_clips


def test_a_clip_is_never_downgraded_even_with_every_file_there(root):
    """The backstop: a narration CSV truncated to its header (a half-synced copy) leaves every file in
    place, but the clips would lose their texts: refused; shards, manifest and ledger unchanged."""
    src, layout = root
    rows = _rows(layout, "nymeria")
    seq = next(r["sequence"] for r in rows if r["text"])
    for csv_path in sorted((src["nymeria"] / seq / "narration").glob("*.csv")):
        csv_path.write_text(csv_path.read_text().splitlines()[0] + "\n")
    published_before = {k: v for k, v in _everything(layout).items() if not k.startswith("work/")}
    out = _cli(src, layout)
    assert out.returncode == 2, out.stderr
    assert "would lose a modality" in out.stderr and seq in out.stderr and "no text now" in out.stderr
    assert {k: v for k, v in _everything(layout).items() if not k.startswith("work/")} == published_before


def test_prune_is_the_user_asking(root, tmp_path):
    """With --prune the same missing body/ folder removes that sequence's clips (a ledger row says why)."""
    src, layout = root
    seq = _rows(layout, "nymeria")[0]["sequence"]
    (src["nymeria"] / seq / "body").rename(tmp_path / "away")
    out = _cli(src, layout, "--prune")
    assert out.returncode == 0, out.stderr
    assert seq not in {r["sequence"] for r in _rows(layout, "nymeria")}
    ledger = pq.read_table(layout.ledger("ingest")).to_pylist()
    assert [(r["sequence"], r["reason"]) for r in ledger] == [(seq, "missing_file")]
