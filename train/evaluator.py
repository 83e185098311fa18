"""The motion-text evaluator R@k, FID and MM-Dist need (no published evaluator weights are reachable).

TMR-style dual encoder, trained on the train split only:
- motion side: the motion VAE *decodes* the latent tokens to per-frame G1 motion features, and a small
  transformer pools them to an embedding, so the DiT is scored in motion space, not in its own
  latent space;
- text side: the frozen MiniLM embedding (already in the store) through an MLP;
- InfoNCE with temperature 0.1 over the batch, negatives whose texts are more similar than 0.8 to the
  positive's (MiniLM cosine) masked out, as TMR does.
Frozen after training and identified by the content hash of its weights; every metric row names it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

TEMPERATURE = 0.1  # TMR
NEG_TEXT_SIM = 0.8  # TMR: such "negatives" say the same thing; they are not negatives


@dataclass(frozen=True)
class EvaluatorConfig:
    feature_dim: int = 148  # per-frame motion features the VAE decodes to
    text_dim: int = 384  # MiniLM
    embed_dim: int = 256
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    max_frames: int = 150

    def to_dict(self) -> dict:
        return asdict(self)


class MotionTextEncoder(nn.Module):
    def __init__(self, cfg: EvaluatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.motion_in = nn.Linear(cfg.feature_dim, cfg.hidden)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_frames, cfg.hidden))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(cfg.hidden, cfg.heads, 4 * cfg.hidden, dropout=0.0, batch_first=True)
        self.motion_enc = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.motion_out = nn.Linear(cfg.hidden, cfg.embed_dim)
        self.text_mlp = nn.Sequential(nn.Linear(cfg.text_dim, 2 * cfg.hidden), nn.GELU(),
                                      nn.Linear(2 * cfg.hidden, cfg.embed_dim))

    def embed_motion(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """frames: (B, T, F) normalised decoded features; frame_mask: (B, T) bool -> (B, E)."""
        t = frames.shape[1]
        h = self.motion_enc(self.motion_in(frames) + self.pos[:, :t], src_key_padding_mask=~frame_mask)
        m = frame_mask.float().unsqueeze(-1)
        # unit length: it is trained on cosine similarity (InfoNCE), so Euclidean ranking, MM-Dist, FID
        # and Diversity are taken on the sphere it learned, not on raw norms it never constrained
        return nn.functional.normalize(self.motion_out((h * m).sum(1) / m.sum(1).clamp(min=1.0)), dim=-1)

    def embed_text(self, text_emb: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_mlp(text_emb), dim=-1)

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor, text_emb: torch.Tensor):
        return self.embed_motion(frames, frame_mask), self.embed_text(text_emb)


def info_nce(motion: torch.Tensor, text: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on cosine similarity / 0.1; pairs whose MiniLM texts are > 0.8 similar (but not
    the positive itself) are removed from the negatives."""
    m = nn.functional.normalize(motion, dim=-1)
    t = nn.functional.normalize(text, dim=-1)
    logits = m @ t.T / TEMPERATURE
    raw = nn.functional.normalize(text_emb, dim=-1)
    same = (raw @ raw.T > NEG_TEXT_SIM) & ~torch.eye(len(m), dtype=torch.bool)
    logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(len(m))
    return 0.5 * (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.T, labels))


def frame_mask_from_tokens(token_mask: torch.Tensor, downsample: int) -> torch.Tensor:
    """(B, T_m) token mask -> (B, T_m * downsample) frame mask."""
    return token_mask.repeat_interleave(downsample, dim=1)


def weights_id(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def load_vae(store_dir: Path, vae_id: str):
    """The store's frozen motion VAE (decoder of the evaluator's motion side and of DiT outputs)."""
    from latents.motion_vae import load_checkpoint

    path = Path(store_dir) / "models" / vae_id
    if not (path / "model.safetensors").is_file():
        from train.data import DataError

        raise DataError(f"the store's VAE {vae_id} is not in {path.parent}; rebuild with `make latents`")
    return load_checkpoint(path)
