"""D_θ: the diffusion transformer that reconstructs a motion latent from a video latent (RoboMirror §3.2,
appendix "Motion Latent Reconstruction", Table 8).

Each block: self-attention over the motion tokens (temporal structure), cross-attention to the video
tokens (the VLM's semantics), an MLP with Swish; every sub-layer is modulated by adaptive layer norm
(shift, scale, gate: DiT's adaLN-Zero) from one conditioning vector = time embedding + projected pooled
video latent. The output layer is zero-initialised, so an untrained model predicts zero velocity.

Shapes: motion tokens x (B, T_m, D_m) (the VAE's 30 x 256); video tokens (B, T_v, D_v) with a padding
mask (B, T_v) bool (True = a real token); pooled video latent (B, D_v); τ buckets (B,) long.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from robomirror.errors import ConfigError
from robomirror.flow import FlowConfig, euler_sample, tau_buckets

PRESETS = {  # hidden, blocks, heads
    "paper": dict(hidden=1024, blocks=12, heads=8),  # Table 8
    "tiny": dict(hidden=128, blocks=2, heads=4),  # CPU tests and the sample store
}


@dataclass(frozen=True)
class DiTConfig:
    motion_dim: int = 256  # D_m: the motion VAE's token width
    motion_tokens: int = 30  # T_m: tokens per clip
    video_dim: int = 64  # D_v: the video encoder's width (2560 for Qwen3-VL-4B, 1280 EfficientNet-Lite0)
    hidden: int = 128
    blocks: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    timestep_buckets: int = 1000  # the embedding table of τ buckets
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if min(self.motion_dim, self.motion_tokens, self.video_dim, self.blocks, self.heads) < 1:
            raise ConfigError("every DiT size must be >= 1")

    @classmethod
    def preset(cls, name: str, **kw) -> "DiTConfig":
        if name not in PRESETS:
            raise ConfigError(f"unknown DiT preset {name!r}; expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **kw})

    def to_dict(self) -> dict:
        return asdict(self)


def timestep_embedding(buckets: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """(B,) integer buckets -> (B, dim) sinusoidal features (DiT / GR00T)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=buckets.device) / half)
    args = buckets.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return nn.functional.pad(emb, (0, dim - emb.shape[-1]))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.norm_self = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.self_attn = nn.MultiheadAttention(h, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm_cross = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.cross_attn = nn.MultiheadAttention(h, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm_mlp = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        width = int(h * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(h, width), nn.SiLU(), nn.Linear(width, h))  # Swish
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(h, 9 * h))  # shift, scale, gate x 3 sub-layers
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)  # adaLN-Zero: each block starts as the identity

    def forward(self, x: torch.Tensor, x_pad: torch.Tensor | None, context: torch.Tensor,
                context_pad: torch.Tensor | None, cond: torch.Tensor) -> torch.Tensor:
        s1, c1, g1, s2, c2, g2, s3, c3, g3 = self.ada(cond).chunk(9, dim=-1)
        y = _modulate(self.norm_self(x), s1, c1)
        x = x + g1[:, None] * self.self_attn(y, y, y, key_padding_mask=x_pad, need_weights=False)[0]
        y = _modulate(self.norm_cross(x), s2, c2)
        x = x + g2[:, None] * self.cross_attn(y, context, context, key_padding_mask=context_pad,
                                              need_weights=False)[0]
        y = _modulate(self.norm_mlp(x), s3, c3)
        return x + g3[:, None] * self.mlp(y)


class DiT(nn.Module):
    """Predicts the flow objective's target (velocity, x0 or ε) for noised motion tokens."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.motion_in = nn.Linear(cfg.motion_dim, h)
        self.motion_pos = nn.Parameter(torch.zeros(1, cfg.motion_tokens, h))
        nn.init.normal_(self.motion_pos, std=0.02)
        self.video_in = nn.Sequential(nn.LayerNorm(cfg.video_dim), nn.Linear(cfg.video_dim, h))
        self.pooled_in = nn.Sequential(nn.LayerNorm(cfg.video_dim), nn.Linear(cfg.video_dim, h))
        self.time_in = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h))
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.blocks))
        self.norm_out = nn.LayerNorm(h, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(h, 2 * h))
        self.out = nn.Linear(h, cfg.motion_dim)
        for layer in (self.ada_out[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, tau_bucket: torch.Tensor, video_tokens: torch.Tensor,
                video_mask: torch.Tensor, video_pooled: torch.Tensor,
                motion_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T_m, D_m); tau_bucket: (B,) long; video_tokens: (B, T_v, D_v); video_mask: (B, T_v)
        bool, True = real token; video_pooled: (B, D_v); motion_mask: (B, T_m) bool, True = real
        motion token (a clip shorter than 5 s has fewer). Returns (B, T_m, D_m); padded positions are
        computed but never attended to."""
        if x.shape[1:] != (self.cfg.motion_tokens, self.cfg.motion_dim):
            raise ValueError(f"motion tokens must be (B, {self.cfg.motion_tokens}, {self.cfg.motion_dim}), "
                             f"got {tuple(x.shape)}")
        if video_tokens.shape[-1] != self.cfg.video_dim:
            raise ValueError(f"video tokens must have width {self.cfg.video_dim} (the DiT's video encoder), "
                             f"got {video_tokens.shape[-1]}")
        cond = self.time_in(timestep_embedding(tau_bucket, self.cfg.hidden)) + self.pooled_in(video_pooled)
        context = self.video_in(video_tokens)
        pad = ~video_mask  # MultiheadAttention masks True
        x_pad = None if motion_mask is None else ~motion_mask
        h = self.motion_in(x) + self.motion_pos
        for block in self.blocks:
            h = block(h, x_pad, context, pad, cond)
        shift, scale = self.ada_out(cond).chunk(2, dim=-1)
        return self.out(_modulate(self.norm_out(h), shift, scale))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class NormalizedDiT(torch.nn.Module):
    """The DiT plus the latent normalisation it was trained with (buffers: saved in its checkpoint)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.dit = DiT(cfg)
        self.register_buffer("latent_mean", torch.zeros(cfg.motion_dim))
        self.register_buffer("latent_std", torch.ones(cfg.motion_dim))

    def forward(self, x, tau_bucket, video_tokens, video_mask, video_pooled, motion_mask=None):
        return self.dit(x, tau_bucket, video_tokens, video_mask, video_pooled, motion_mask)


@torch.no_grad()
def reconstruct(model: NormalizedDiT, batch: dict, flow: FlowConfig, seed: int,
                video_from: torch.Tensor | None = None) -> torch.Tensor:
    """DiT samples of the motion tokens (B, T_m, D_m), de-normalised; padded positions zeroed.
    `video_from`: a permutation of the batch whose video conditions each clip (the shuffled floor).
    The noise is drawn on the CPU from `seed` and moved to the batch's device and dtype, so a GPU run
    starts from the same noise."""

    model.eval()
    idx = torch.arange(len(batch["clip_id"])) if video_from is None else video_from
    gen = torch.Generator().manual_seed(seed)
    tokens = batch["motion_tokens"]
    noise = torch.randn(tokens.shape, generator=gen).to(tokens.device, tokens.dtype)

    def predict(x, tau):
        return model(x, tau_buckets(tau, flow), batch["video_tokens"][idx], batch["video_mask"][idx],
                     batch["video_latent"][idx], batch["motion_mask"])

    out = euler_sample(predict, noise, flow) * model.latent_std + model.latent_mean
    return out * batch["motion_mask"].unsqueeze(-1)


def load_trained(run_dir) -> tuple[NormalizedDiT, FlowConfig, dict]:
    """A trained DiT from a `python -m train run` folder: (model in eval mode, its flow config, run.json)."""
    import json
    from pathlib import Path

    from robomirror.trainer import latest_checkpoint, load_checkpoint

    run_dir = Path(run_dir)
    meta_path, ckpt = run_dir / "run.json", latest_checkpoint(run_dir / "dit")
    if not meta_path.is_file() or ckpt is None:
        raise ConfigError(f"{run_dir} is not a finished training run (run.json and dit/latest expected)")
    meta = json.loads(meta_path.read_text())
    model = NormalizedDiT(DiTConfig(**meta["dit"]))
    load_checkpoint(ckpt, model)
    model.eval()
    return model, FlowConfig(**meta["flow"]), meta
