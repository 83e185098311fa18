"""The DiT: shapes and padding masks, determinism with a seed, and it overfits a handful of clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robomirror.dit import DiT, DiTConfig, NormalizedDiT, reconstruct
from robomirror.errors import ConfigError
from robomirror.flow import FlowConfig, noised, sample_tau, target, tau_buckets


def _batch(n=4, t_v=6, d_v=16, t_m=10, d_m=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, t_v, dtype=torch.bool)
    mask[1, 4:] = False
    mmask = torch.ones(n, t_m, dtype=torch.bool)
    mmask[2, 7:] = False
    return {"clip_id": [f"c{i}" for i in range(n)], "motion_tokens": torch.randn(n, t_m, d_m, generator=g) * mmask[..., None],
            "motion_mask": mmask, "video_tokens": torch.randn(n, t_v, d_v, generator=g), "video_mask": mask,
            "video_latent": torch.randn(n, d_v, generator=g)}


def test_padding_is_never_attended_to():
    torch.manual_seed(0)
    cfg = DiTConfig(motion_dim=8, motion_tokens=10, video_dim=16, hidden=32, blocks=2, heads=4)
    model = DiT(cfg)
    for p in model.parameters():  # leave adaLN-Zero's identity start so the test sees the layers work
        torch.nn.init.normal_(p, std=0.1)
    b = _batch()
    tau = torch.tensor([10, 200, 500, 900])
    out = model(b["motion_tokens"], tau, b["video_tokens"], b["video_mask"], b["video_latent"], b["motion_mask"])
    assert out.shape == (4, 10, 8)
    junk = b["video_tokens"].clone()
    junk[1, 4:] = 1e3  # padded video tokens of clip 1
    x = b["motion_tokens"].clone()
    x[2, 7:] = -1e3  # padded motion tokens of clip 2
    out2 = model(x, tau, junk, b["video_mask"], b["video_latent"], b["motion_mask"])
    assert torch.allclose(out[:, :7], out2[:, :7], atol=1e-5) and torch.allclose(out[[0, 1, 3]], out2[[0, 1, 3]], atol=1e-5)
    with pytest.raises(ValueError, match="video tokens must have width 16"):
        model(b["motion_tokens"], tau, b["video_tokens"][..., :8], b["video_mask"], b["video_latent"])
    with pytest.raises(ConfigError, match="multiple of heads"):
        DiTConfig(hidden=30, heads=4)
    assert DiTConfig.preset("paper").hidden == 1024 and DiTConfig.preset("paper").blocks == 12


def test_the_dit_overfits_a_handful_of_clips_and_retrieves_them():
    """Four clips, each with its own video: after training, sampling from noise with clip i's video
    gives a latent closest to clip i's (2 Euler steps), and the loss fell."""
    torch.manual_seed(0)
    flow = FlowConfig()
    cfg = DiTConfig(motion_dim=8, motion_tokens=10, video_dim=16, hidden=64, blocks=2, heads=4)
    model = NormalizedDiT(cfg)
    b = _batch(seed=3)
    b["motion_mask"][:] = True
    b["motion_tokens"] = torch.randn(4, 10, 8, generator=torch.Generator().manual_seed(5))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(400):
        noise = torch.randn(4, 10, 8)
        tau = sample_tau(4, flow, rng)
        pred = model(noised(b["motion_tokens"], noise, tau), tau_buckets(tau, flow), b["video_tokens"],
                     b["video_mask"], b["video_latent"], b["motion_mask"])
        loss = ((pred - target(b["motion_tokens"], noise, flow)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    out = reconstruct(model, b, flow, seed=1)
    d = torch.cdist(out.flatten(1), b["motion_tokens"].flatten(1))
    assert d.argmin(1).tolist() == [0, 1, 2, 3]
    assert torch.equal(out, reconstruct(model, b, flow, seed=1))  # deterministic for a seed
    shuffled = reconstruct(model, b, flow, seed=1, video_from=torch.tensor([1, 2, 3, 0]))
    assert torch.cdist(shuffled.flatten(1), b["motion_tokens"].flatten(1)).argmin(1).tolist() == [1, 2, 3, 0]
