"""Names are data, never paths: any sequence name is ingested or gets a ledger row; none collide."""

from __future__ import annotations

import os
import shutil
import unicodedata

import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.failures import read_ledger
from ingest.manifest import fs_name, stored_name
from ingest.pipeline import run_ingest
from ingest.sequence import SourceRef
from ingest.stage import staging_name
from robomirror.paths import DataLayout
from tests.conftest import TEST_CFG, run_module

MX = "motion/motion_generation/smplx322"
TEXTS = "text/semantic_label"

NAMES = ["take.v1", "take.v2", "subject01.walk", "with space", "naïve walk ✓", "x" * 200, "a..b", ".hidden",
         "take.v1.", "tar.tar", "json.json"]


def test_staging_names_are_distinct_and_flat():
    rng = np.random.default_rng(0)
    alphabet = list("ab.c- _/ÄÖü✓\\") + ["\udcff"]  # \udcff: a non-UTF-8 byte as os.fsdecode gives it
    names = set(NAMES) | {"".join(rng.choice(alphabet, int(rng.integers(1, 40)))) for _ in range(500)}
    stems = {}
    for n in names:
        s = staging_name(SourceRef("motionx", "humanml", n, "/r", ()))
        assert "/" not in s and "\\" not in s and s.isascii() and len(s) <= 100
        assert s not in stems, (n, stems.get(s))
        stems[s] = n


def test_every_odd_name_is_ingested_once(small_sample, tmp_path):
    src = tmp_path / "motionx"
    good = sorted((small_sample["motionx"] / MX / "idea400").glob("*.npy"))[0]
    for sub in (MX, TEXTS, "video"):
        (src / sub / "idea400").mkdir(parents=True)
    names = list(NAMES)
    if os.name == "posix":
        names.append(os.fsdecode(b"latin1_\xe9t\xe9"))  # a file name that is not valid UTF-8
    for n in names:
        shutil.copy(good, src / MX / "idea400" / f"{n}.npy")
        shutil.copy(small_sample["motionx"] / TEXTS / "idea400" / f"{good.stem}.txt", src / TEXTS / "idea400" / f"{n}.txt")
        shutil.copy(small_sample["motionx"] / "video" / "idea400" / f"{good.stem}.mp4", src / "video" / "idea400" / f"{n}.mp4")
    layout = DataLayout(tmp_path / "data")
    summary = run_ingest(layout, {"motionx": src}, TEST_CFG, executor="serial", progress=False)
    manifest = pq.read_table(layout.manifest("ingest", "motionx")).to_pylist()
    seen = {r["sequence"] for r in manifest}
    failed = {f.sequence for f in read_ledger(layout.ledger("ingest"))}
    assert summary.sources == len(names) == summary.built + summary.cached + summary.failed
    assert seen | failed == {stored_name(n) for n in names} and not (seen & failed)
    assert failed == set(), failed  # all of them are good input
    per_seq = [r["sequence"] for r in manifest]
    assert len(per_seq) == len(names) * (len(manifest) // len(names))  # same clips per sequence, none lost


@pytest.mark.parametrize("name", ["take.v1", "take.v2"])
def test_dotted_names_do_not_share_a_staging_file(name):
    a = staging_name(SourceRef("motionx", "s", "take.v1", "/r", ()))
    b = staging_name(SourceRef("motionx", "s", "take.v2", "/r", ()))
    assert a != b and a.endswith(a.rsplit("-", 1)[1])


def test_one_source_on_the_command_line_ingests_only_that_source(small_sample, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(small_sample["nymeria"], DataLayout(root).sample_source("nymeria"))  # must not be added
    out = run_module("ingest", "--data-root", str(root), "run", "--executor", "serial", "--no-progress",
                     "--motionx", str(small_sample["motionx"]))
    assert out.returncode == 0, out.stderr
    assert not (root / "shards" / "ingest" / "nymeria").exists()
    assert (root / "shards" / "ingest" / "motionx" / "manifest.parquet").is_file()


def test_every_discovered_thing_is_accounted_for(small_sample, tmp_path):
    """A file where a folder is expected, a FIFO (it used to hang the run), an unparsable Nymeria
    folder: one ledger row each, and sources seen = built + cached + failed."""
    from tests.conftest import copy_sample

    src = copy_sample(small_sample, tmp_path / "src")
    good = sorted((src["motionx"] / MX / "idea400").glob("*.npy"))[0]
    shutil.copy(good, src["motionx"] / MX / "loose.npy")
    os.mkfifo(src["motionx"] / MX / "idea400" / "pipe.npy")
    (src["nymeria"] / "not_a_sequence").mkdir()
    (src["nymeria"] / ".download_logs").mkdir()  # the official downloader's bookkeeping: not data
    layout = DataLayout(tmp_path / "data")
    summary = run_ingest(layout, src, TEST_CFG, executor="serial", progress=False)
    ledger = {f.sequence: f.reason for f in read_ledger(layout.ledger("ingest"))}
    assert ledger == {"loose.npy": "not_a_source", "pipe.npy": "not_a_source", "not_a_sequence": "not_a_source"}
    assert summary.sources == summary.built + summary.cached + summary.failed
    assert summary.failed == 3 and summary.built > 0


def _one_motionx_source(small_sample, src, names: list[str]) -> None:
    """Motion-X++ sequences under `names`, each a copy of one motion-only (humanml) sample sequence."""
    good = sorted((small_sample["motionx"] / MX / "humanml").glob("*.npy"))[0]
    for sub in (MX, TEXTS):
        (src / sub / "humanml").mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(good, src / MX / "humanml" / f"{n}.npy")
        shutil.copy(small_sample["motionx"] / TEXTS / "humanml" / f"{good.stem}.txt", src / TEXTS / "humanml" / f"{n}.txt")


def _run(layout: DataLayout, src, *extra: str):
    out = run_module("ingest", "--data-root", str(layout.root), "run", "--executor", "serial", "--no-progress",
                     "--motionx", str(src), *extra)
    assert out.returncode == 0, out.stderr
    return out


def _root_bytes(layout: DataLayout) -> dict[str, bytes]:
    return {str(p.relative_to(layout.root)): p.read_bytes() for p in sorted(layout.root.rglob("*"))
            if p.is_file() and p.name != ".writer.lock"}


def _generation(layout: DataLayout) -> dict[str, bytes]:
    """The committed generation: the manifest and the shards (with sidecars) it lists."""
    from robomirror.shards import published_shards

    manifest = layout.manifest("ingest", "motionx")
    return {p.name: p.read_bytes() for s in published_shards(manifest) for p in (s, s.with_suffix(".json"))} | {
        manifest.name: manifest.read_bytes()}


def _sequences(layout: DataLayout) -> set[str]:
    return set(pq.read_table(layout.manifest("ingest", "motionx")).column("sequence").to_pylist())


def test_stored_names_round_trip():
    names = [os.fsdecode(b"latin1_\xe9t\xe9"), "lit\\xe9", "back\\slash", "\\", "caf\u00e9", "cafe\u0301", "✓"]
    stored = [stored_name(n) for n in names]
    assert len(set(stored)) == len(names)  # a literal "\\xe9" and the byte 0xE9 are two names
    for n, s in zip(names, stored, strict=True):
        assert fs_name(s) == n and os.fsencode(fs_name(s)) == os.fsencode(n)
        s.encode("utf-8")  # Arrow and JSON can hold it
    assert stored_name("take.v1") == "take.v1" and fs_name("old\\name") == "old\\name"  # plain names unchanged


@pytest.mark.skipif(os.name != "posix", reason="file names as bytes")
def test_a_non_utf8_name_does_not_stick_the_data_root(small_sample, tmp_path):
    """It used to ingest once; every later run exited 2 and --prune could not clear it."""
    src, layout = tmp_path / "motionx", DataLayout(tmp_path / "data")
    latin1, literal = os.fsdecode(b"latin1_\xe9t\xe9"), "latin1_\\xe9t\\xe9"  # bytes 0xE9 / the text \xe9
    _one_motionx_source(small_sample, src, [latin1, literal, "plain"])
    _run(layout, src)
    assert _sequences(layout) == {stored_name(latin1), stored_name(literal), "plain"}
    assert {fs_name(s) for s in _sequences(layout)} == {p.stem for p in (src / MX / "humanml").glob("*.npy")}
    first = _root_bytes(layout)
    _run(layout, src)  # a rerun: everything cached, not one byte changed
    assert _root_bytes(layout) == first
    (src / MX / "humanml" / f"{latin1}.npy").rename(tmp_path / "away.npy")
    out = _run(layout, src)  # gone as a whole: kept from staging, not refused
    assert "kept, source not found" in out.stdout and _root_bytes(layout) == first
    _run(layout, src, "--prune")  # the user asks: exactly that one leaves
    assert _sequences(layout) == {stored_name(literal), "plain"}
    pruned = _generation(layout)
    _run(layout, src)  # and it stays cleared
    assert _generation(layout) == pruned
    (tmp_path / "away.npy").rename(src / MX / "humanml" / f"{latin1}.npy")
    _run(layout, src)  # back: the first generation again, byte for byte
    assert _generation(layout) == {k[len("shards/ingest/motionx/"):]: v for k, v in first.items()
                                   if k.startswith("shards/ingest/motionx/")}


def test_names_differing_only_by_normalisation_are_two_sources(small_sample, tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    src, layout = tmp_path / "motionx", DataLayout(tmp_path / "data")
    _one_motionx_source(small_sample, src, [nfc, nfd])
    if len(list((src / MX / "humanml").glob("*.npy"))) != 2:
        pytest.skip("this file system normalises names (one file for both)")
    _run(layout, src)
    rows = pq.read_table(layout.manifest("ingest", "motionx")).to_pylist()
    assert _sequences(layout) == {nfc, nfd}  # stored as they are: never normalised
    assert len({r["clip_id"] for r in rows}) == len(rows) and {r["sequence"] for r in rows} == {nfc, nfd}
    first = _root_bytes(layout)
    _run(layout, src)
    assert _root_bytes(layout) == first
    (src / MX / "humanml" / f"{nfd}.npy").unlink()
    _run(layout, src, "--prune")
    assert _sequences(layout) == {nfc}
