"""The alignment baseline the paper compares reconstruction against (Table 4): a 4-layer transformer
adapter that maps video tokens to motion tokens and is trained only to *align* them with the real
motion latent by InfoNCE (no reconstruction loss). Its output tokens are decoded and scored exactly
like the DiT's, so the table shows what generative reconstruction adds over feature matching.

The adapter: 30 learned motion queries attend to the projected video tokens through a 4-layer
transformer decoder; the pooled query outputs are matched to the pooled VAE latents of the batch with
symmetric InfoNCE (cosine / 0.1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

TEMPERATURE = 0.1


@dataclass(frozen=True)
class AlignConfig:
    video_dim: int = 64
    motion_dim: int = 256
    motion_tokens: int = 30
    hidden: int = 128
    layers: int = 4  # the paper's 4-layer adapter
    heads: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class AlignAdapter(nn.Module):
    def __init__(self, cfg: AlignConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.video_in = nn.Sequential(nn.LayerNorm(cfg.video_dim), nn.Linear(cfg.video_dim, cfg.hidden))
        self.queries = nn.Parameter(torch.randn(1, cfg.motion_tokens, cfg.hidden) * 0.02)
        layer = nn.TransformerDecoderLayer(cfg.hidden, cfg.heads, 4 * cfg.hidden, dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)
        self.out = nn.Linear(cfg.hidden, cfg.motion_dim)

    def forward(self, video_tokens: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """(B, T_v, D_v), (B, T_v) bool -> motion tokens (B, T_m, D_m)."""
        memory = self.video_in(video_tokens)
        q = self.queries.expand(len(video_tokens), -1, -1)
        return self.out(self.decoder(q, memory, memory_key_padding_mask=~video_mask))


def align_loss(pred_tokens: torch.Tensor, motion_latent: torch.Tensor, motion_mask: torch.Tensor) -> torch.Tensor:
    m = motion_mask.float().unsqueeze(-1)
    pooled = (pred_tokens * m).sum(1) / m.sum(1).clamp(min=1.0)
    a = nn.functional.normalize(pooled, dim=-1)
    b = nn.functional.normalize(motion_latent, dim=-1)
    logits = a @ b.T / TEMPERATURE
    labels = torch.arange(len(a))
    return 0.5 * (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.T, labels))


@dataclass
class AlignTask:
    data: object  # train.tasks.StoreSide
    cfg: AlignConfig
    name: str = "align"

    def build_model(self) -> AlignAdapter:
        return AlignAdapter(self.cfg)

    def dataset(self):
        return self.data.dataset()

    def collate(self, items):
        from train.data import collate

        return collate(items, self.cfg.motion_tokens)

    def loss(self, model, batch, gen, rows, global_batch):
        return align_loss(model(batch["video_tokens"], batch["video_mask"]), batch["motion_latent"],
                          batch["motion_mask"]), {}


@torch.no_grad()
def adapt(model: AlignAdapter, batch: dict, video_from: torch.Tensor | None = None) -> torch.Tensor:
    model.eval()
    idx = torch.arange(len(batch["clip_id"])) if video_from is None else video_from
    return model(batch["video_tokens"][idx], batch["video_mask"][idx]) * batch["motion_mask"].unsqueeze(-1)
