"""The manifest is the single commit point over immutable shards.

A writer killed between any two publish steps of a republish leaves a data root where the committed
manifest's every clip is in the shard it names (the old generation or the new one, never a mix), and
a reader that still holds the previous manifest finds every clip it lists after the new commit.
"""

from __future__ import annotations

import hashlib
import pathlib
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

import robomirror.atomic as atomic_mod
import robomirror.shards as shards_mod
from ingest.pipeline import run_ingest
from robomirror.paths import DataLayout
from robomirror.shards import manifest_shards, verify_shard
from robomirror.tario import read_tar
from tests.conftest import TEST_CFG, copy_sample


class Killed(BaseException):
    """Stands in for SIGKILL at one publish step (BaseException: no handler in the code under test catches it)."""


def _change_one_sequence(sample: dict[str, pathlib.Path]) -> None:
    """Make the corpus a new generation: one Motion-X sequence loses its last tenth of frames."""
    seq = next(p for p in sorted(sample["motionx"].rglob("*.npy"))
               if np.load(p, allow_pickle=False).ndim == 2 and len(np.load(p, allow_pickle=False)) >= 200)
    arr = np.load(seq, allow_pickle=False)
    np.save(seq, arr[: int(len(arr) * 0.9)], allow_pickle=False)


def _listed_clips_are_present(layout: DataLayout, manifest: pathlib.Path) -> int:
    rows = pq.read_table(manifest, columns=["clip_id", "shard"]).to_pylist()
    members: dict[str, set[str]] = {}
    for name in manifest_shards(manifest):
        shard = manifest.parent / name
        assert verify_shard(shard) is not None, f"{name}: listed by the manifest but missing or not intact"
        members[name] = {n.split(".", 1)[0] for n, _ in read_tar(str(shard))}
    for r in rows:
        assert r["clip_id"] in members[r["shard"]], f"{r['clip_id']} not in {r['shard']}"
    return len(rows)


def _digest(p: pathlib.Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_generations(tmp_path_factory, small_sample):
    """Gen A published; the sources changed; gen B staged and published in a reference root."""
    base = tmp_path_factory.mktemp("gens")
    src = copy_sample(small_sample, base / "src")
    gen_a = DataLayout(base / "gen_a")
    run_ingest(gen_a, src, TEST_CFG, executor="serial", progress=False)
    _change_one_sequence(src)
    ref = DataLayout(base / "ref")
    shutil.copytree(gen_a.root, ref.root)
    run_ingest(ref, src, TEST_CFG, executor="serial", progress=False)
    return src, gen_a, ref


def test_a_reader_of_the_previous_manifest_finds_every_clip_after_a_republish(two_generations):
    src, gen_a, ref = two_generations
    for ds in src:
        old_manifest, new_manifest = gen_a.manifest("ingest", ds), ref.manifest("ingest", ds)
        old_names, new_names = set(manifest_shards(old_manifest)), set(manifest_shards(new_manifest))
        if ds == "motionx":
            assert old_names != new_names, "the change did not make a new generation; the test proves nothing"
        # the old manifest, read against the data root after the new commit
        moved = ref.shard_dir("ingest", ds) / "old-manifest.parquet"
        shutil.copy(old_manifest, moved)
        try:
            assert _listed_clips_are_present(ref, moved) > 0
        finally:
            moved.unlink()
        # exactly the two generations are on disk: nothing else is kept, nothing either lists is gone
        on_disk = {p.name for p in ref.shard_dir("ingest", ds).glob("shard-*.tar")}
        assert on_disk == old_names | new_names


@pytest.fixture(scope="module")
def third_generation(two_generations, tmp_path_factory):
    """Gen C published over the root holding A and B: A's shards are collected, B's kept."""
    src, gen_a, ref = two_generations
    base = tmp_path_factory.mktemp("gen_c")
    src3 = copy_sample(src, base / "src")
    _change_one_sequence(src3)
    gen_c = DataLayout(base / "root")
    shutil.copytree(ref.root, gen_c.root)
    run_ingest(gen_c, src3, TEST_CFG, executor="serial", progress=False)
    return src3, gen_c


def test_a_third_generation_removes_the_first(two_generations, third_generation):
    src, gen_a, ref = two_generations
    _, gen_c = third_generation
    first_only = set(manifest_shards(gen_a.manifest("ingest", "motionx"))) - set(
        manifest_shards(ref.manifest("ingest", "motionx")))
    on_disk = {p.name for p in gen_c.shard_dir("ingest", "motionx").glob("shard-*.tar")}
    assert first_only and not (first_only & on_disk)
    assert set(manifest_shards(ref.manifest("ingest", "motionx"))) <= on_disk  # the previous generation stays
    assert {p.stem for p in gen_c.shard_dir("ingest", "motionx").glob("shard-*.json")} == {p[:-4] for p in on_disk}


def test_kill_between_every_publish_step_leaves_one_whole_generation(two_generations, third_generation, tmp_path,
                                                                       monkeypatch):
    """Start: A and B on disk, B committed, C staged. Kill at publish step 1, 2, ... until a run finishes."""
    _, _, gen_b = two_generations
    src, gen_c = third_generation
    ds = "motionx"
    b_manifest, c_manifest = _digest(gen_b.manifest("ingest", ds)), _digest(gen_c.manifest("ingest", ds))
    c_listed = {n: _digest(gen_c.shard_dir("ingest", ds) / n) for n in manifest_shards(gen_c.manifest("ingest", ds))}
    b_listed = set(manifest_shards(gen_b.manifest("ingest", ds)))
    real_publish, real_unlink = atomic_mod.publish_with, pathlib.Path.unlink
    real_deferred, real_replace = atomic_mod.DeferredPublish.write, atomic_mod.os.replace
    killed_at: list[str] = []
    step = 0
    while True:
        step += 1
        root = DataLayout(tmp_path / f"k{step}")
        shutil.copytree(gen_b.root / "shards", root.root / "shards")
        shutil.copytree(gen_c.root / "work", root.root / "work")  # gen C staged: only the publish steps remain
        calls = {"n": 0}

        def counted(kind: str, fn, root=root, calls=calls, step=step, arg=0):
            def wrapper(*a, **kw):
                target = pathlib.Path(a[arg])
                if root.root / "shards" in target.parents:  # a publish step of this data root
                    calls["n"] += 1
                    if calls["n"] == step:
                        killed_at.append(f"{kind} {target.name}")
                        raise Killed
                return fn(*a, **kw)
            return wrapper

        monkeypatch.setattr(shards_mod, "publish_with", counted("write", real_publish))
        monkeypatch.setattr(atomic_mod, "publish_with", counted("write", real_publish))  # sidecars
        monkeypatch.setattr(atomic_mod.DeferredPublish, "write", counted("write", real_deferred, arg=1))  # shards
        monkeypatch.setattr(atomic_mod.os, "replace", counted("rename", real_replace))
        monkeypatch.setattr(pathlib.Path, "unlink", counted("unlink", real_unlink))
        try:
            run_ingest(root, src, TEST_CFG, executor="serial", progress=False)
            finished = True
        except Killed:
            finished = False
        finally:
            monkeypatch.setattr(shards_mod, "publish_with", real_publish)
            monkeypatch.setattr(atomic_mod, "publish_with", real_publish)
            monkeypatch.setattr(atomic_mod.DeferredPublish, "write", real_deferred)
            monkeypatch.setattr(atomic_mod.os, "replace", real_replace)
            monkeypatch.setattr(pathlib.Path, "unlink", real_unlink)
        manifest = root.manifest("ingest", ds)
        # the committed manifest is one of the two generations, and every clip it lists is where it says
        assert _digest(manifest) in (b_manifest, c_manifest), killed_at[-1:]
        assert _listed_clips_are_present(root, manifest) > 0
        if finished:
            break
        # resuming converges on gen C exactly, and the folder holds nothing the two generations do not list
        run_ingest(root, src, TEST_CFG, executor="serial", progress=False)
        assert _digest(manifest) == c_manifest
        assert {n: _digest(root.shard_dir("ingest", ds) / n) for n in manifest_shards(manifest)} == c_listed
        assert {p.name for p in root.shard_dir("ingest", ds).glob("shard-*.tar")} <= b_listed | set(c_listed)
        assert not list(root.root.rglob("*.tmp-*"))
    kinds = {k.split()[0] for k in killed_at}
    assert {"write", "rename", "unlink"} <= kinds and any("manifest" in k for k in killed_at), killed_at
    assert len(killed_at) >= 5, killed_at
