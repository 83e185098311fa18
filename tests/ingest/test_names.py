"""Names are data, never paths: any sequence name is ingested or gets a ledger row; none collide."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.failures import read_ledger
from ingest.pipeline import run_ingest
from ingest.sequence import SourceRef
from ingest.stage import staging_name
from robomirror.paths import DataLayout, printable
from tests.conftest import TEST_CFG

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
    assert seen | failed == {printable(n) for n in names} and not (seen & failed)
    assert failed == set(), failed  # all of them are good input
    per_seq = [r["sequence"] for r in manifest]
    assert len(per_seq) == len(names) * (len(manifest) // len(names))  # same clips per sequence, none lost


@pytest.mark.parametrize("name", ["take.v1", "take.v2"])
def test_dotted_names_do_not_share_a_staging_file(name):
    a = staging_name(SourceRef("motionx", "s", "take.v1", "/r", ()))
    b = staging_name(SourceRef("motionx", "s", "take.v2", "/r", ()))
    assert a != b and a.endswith(a.rsplit("-", 1)[1])


def test_one_source_on_the_command_line_ingests_only_that_source(small_sample, tmp_path):
    from tests.conftest import run_module

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
