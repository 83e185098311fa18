"""Motion VAE: shapes, loss goes down, held-out reconstruction beats the mean pose, determinism."""

from __future__ import annotations

import io

import numpy as np
import pytest
import webdataset as wds

from latents.features import feature_dim, motion_features
from latents.motion_vae import VAEConfig, encode, load_checkpoint, reconstruct, save_checkpoint, train
from latents.recon_error import joint_error_rad, keypoint_error_m

SMALL = dict(layers=1, ff_dim=256, steps=120, batch=6)


@pytest.fixture(scope="module")
def feats(retargeted):
    layout, _ = retargeted
    urls = sorted(str(p) for p in layout.root.glob("shards/retarget/*/shard-*.tar"))
    out = [motion_features(dict(np.load(io.BytesIO(s["robot.npz"])))) for s in
           wds.WebDataset(urls, shardshuffle=False, empty_check=False)]
    assert out and out[0].shape[1] == feature_dim(23, 30)
    return out


def test_shapes_loss_and_heldout_error(feats, tmp_path):
    held, tr = feats[::4], [f for i, f in enumerate(feats) if i % 4]
    cfg = VAEConfig(feature_dim=feats[0].shape[1], **SMALL)
    vae = train(tr, cfg)
    assert np.mean(vae.losses[-10:]) < 0.5 * np.mean(vae.losses[:10])
    tokens, pooled, n = encode(vae, held)
    assert tokens.shape == (len(held), 30, 256) and pooled.shape == (len(held), 256)
    assert all(k == int(np.ceil(len(f) / cfg.downsample)) for k, f in zip(n, held, strict=True))
    rec = reconstruct(vae, held)
    mean_pose = [np.broadcast_to(vae.mean, f.shape) for f in held]
    err, baseline = joint_error_rad(rec, held, 23), joint_error_rad(mean_pose, held, 23)
    # Stated bounds. The fixture holds out 3 clips after training on 6: over seeds 0-2 the held-out ratios
    # to the mean-pose baseline spread 0.56-0.65 (joints) and 0.66-0.81 (keypoints), so tighter bounds
    # would test the seed, not the model. On the demo corpus (17 training clips) both are ~0.35.
    assert err < 0.7 * baseline
    kp, kp_base = keypoint_error_m(rec, held, 23), keypoint_error_m(mean_pose, held, 23)
    assert kp < 0.9 * kp_base and kp < 0.05
    fit_rec = reconstruct(vae, tr)  # and it learned the clips it saw
    assert joint_error_rad(fit_rec, tr, 23) < 0.35 * joint_error_rad([np.broadcast_to(vae.mean, f.shape) for f in tr], tr, 23)
    assert keypoint_error_m(held, held, 23) == 0.0
    h = save_checkpoint(vae, tmp_path / "ckpt")
    again = load_checkpoint(tmp_path / "ckpt")
    assert again.content_hash() == h
    np.testing.assert_allclose(encode(again, held)[1], pooled, atol=1e-6)


def test_same_seed_same_weights(feats):
    cfg = VAEConfig(feature_dim=feats[0].shape[1], **{**SMALL, "steps": 20})
    assert train(feats, cfg).content_hash() == train(feats, cfg).content_hash()
    assert train(feats, cfg).content_hash() != train(feats, VAEConfig(**{**cfg.__dict__, "seed": 1})).content_hash()
