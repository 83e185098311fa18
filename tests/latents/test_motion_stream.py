"""The VAE's data streams from the published retarget shards: every clip is indexed by byte range,
the statistics of one streaming pass equal the in-memory ones, and the trainer is the shared one."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq

from latents.features import motion_features
from latents.motion_stream import FeatureDataset, clip_index, feature_stats, read_features, read_motion
from robomirror.shards import published_shards
from robomirror.tario import read_tar


def test_index_covers_every_published_clip_with_its_exact_bytes(retargeted):
    layout, _ = retargeted
    refs = clip_index(layout.root)
    manifest_ids = [c for m in sorted(layout.root.glob("shards/retarget/*/manifest.parquet"))
                    for c in pq.read_table(m, columns=["clip_id"]).column(0).to_pylist()]
    assert [r.clip_id for r in refs] == manifest_ids
    members = {n.split(".")[0]: d for m in sorted(layout.root.glob("shards/retarget/*/manifest.parquet"))
               for p in published_shards(m) for n, d in read_tar(str(p)) if n.endswith(".robot.npz")}
    for r in refs[:4]:
        a = read_motion(r)
        b = dict(np.load(io.BytesIO(members[r.clip_id]), allow_pickle=False))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_streaming_statistics_equal_the_in_memory_ones(retargeted):
    layout, _ = retargeted
    refs = clip_index(layout.root)
    feats = [motion_features(read_motion(r)) for r in refs]
    mean, std = feature_stats(refs)
    allf = np.concatenate(feats).astype(np.float64)
    assert np.allclose(mean, allf.mean(0), atol=1e-5) and np.allclose(std, allf.std(0) + 1e-3, atol=1e-4)
    ds = FeatureDataset(refs, mean, std, 150)
    x, m = ds[0]
    n = len(read_features(refs[0]))
    assert x.shape == (150, allf.shape[1]) and int(m.sum()) == min(n, 150)
    assert np.allclose(x[:n].numpy(), (feats[0][:150] - mean) / std, atol=1e-5)
