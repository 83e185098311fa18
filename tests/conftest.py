"""Shared fixtures: a small sample corpus and one serial ingest of it, built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering, before any test module imports mujoco

import hashlib  # noqa: E402
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.config import IngestConfig
from ingest.pipeline import run_ingest
from ingest.sample.corpus import SampleConfig, build_sample
from robomirror.paths import DataLayout

REPO = Path(__file__).resolve().parents[1]
SMALL = SampleConfig(seed=7, n_motionx=5, n_nymeria=2, max_seconds=11.0)
# small shards so the corpus spans several of them (packing and resume get exercised)
TEST_CFG = IngestConfig(shard_target_bytes=600_000)
LATENTS_VAE_KW = dict(feature_dim=148, layers=1, ff_dim=256, steps=30)  # a brief VAE: plumbing tests


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> dict[str, Path]:
    return build_sample(tmp_path_factory.mktemp("sample"), SMALL, progress=False)


@pytest.fixture(scope="session")
def ingested(tmp_path_factory, small_sample):
    layout = DataLayout(tmp_path_factory.mktemp("data"))
    summary = run_ingest(layout, small_sample, TEST_CFG, executor="serial", progress=False)
    return layout, summary


def copy_sample(sample: dict[str, Path], dest: Path) -> dict[str, Path]:
    out = {}
    for ds, root in sample.items():
        shutil.copytree(root, dest / ds)
        out[ds] = dest / ds
    return out


def shard_digests(layout: DataLayout) -> dict[str, str]:
    """relative path -> sha256 of every published shard, sidecar and manifest."""
    base = layout.root / "shards"
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


def run_module(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=e, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def retargeted(tmp_path_factory, ingested):
    """A copy of the ingested data root, retargeted serially (ingest fixtures stay untouched)."""
    from retarget.config import RetargetConfig
    from retarget.pipeline import run_retarget

    src, _ = ingested
    root = tmp_path_factory.mktemp("retarget") / "data"
    shutil.copytree(src.root, root)
    layout = DataLayout(root)
    summary = run_retarget(layout, RetargetConfig(), executor="serial", progress=False)
    return layout, summary


@pytest.fixture(scope="session")
def latents_built(tmp_path_factory, retargeted):
    """A store built once (serially, tiny VLM, a briefly trained VAE) over a copy of the retarget shards."""
    from latents.motion_vae import VAEConfig
    from latents.pipeline import run_latents

    src, _ = retargeted
    layout = DataLayout(tmp_path_factory.mktemp("latents") / "data")
    shutil.copytree(src.root / "shards", layout.root / "shards")
    return layout, run_latents(layout, vae_cfg=VAEConfig(**LATENTS_VAE_KW))


def stage_digests(layout: DataLayout, stage: str) -> dict[str, str]:
    base = layout.root / "shards" / stage
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}
