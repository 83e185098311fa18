"""Motion VAE: a 5 s G1 clip -> a sequence of latent tokens (width 256) and a pooled 256-d vector.

A small transformer encoder over per-frame features (`latents.features`), average-pooled in time
into tokens (one per `downsample` frames), with a Gaussian posterior per token; the decoder
upsamples the tokens back to frames. Weights are stored as safetensors (no pickle) with a JSON
config; the checkpoint's content hash is recorded on every row it produces.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from robomirror.atomic import publish_bytes


@dataclass(frozen=True)
class VAEConfig:
    feature_dim: int = 148  # per-frame features (set from the data: 148 for g1_23dof)
    clip_frames: int = 150  # frames per clip (shorter clips are padded and masked)
    latent_dim: int = 256  # width of every latent token and of the pooled vector
    downsample: int = 5  # frames per latent token: 150 frames -> 30 tokens
    layers: int = 2  # transformer layers in the encoder and in the decoder
    heads: int = 4
    ff_dim: int = 512
    kl_weight: float = 1e-3
    steps: int = 400  # training steps
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0


class MotionVAE(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.latent_dim
        self.inp = nn.Linear(cfg.feature_dim, d)
        self.pos = nn.Parameter(torch.zeros(1, cfg.clip_frames, d))
        layer = lambda: nn.TransformerEncoderLayer(d, cfg.heads, cfg.ff_dim, dropout=0.0, batch_first=True)  # noqa: E731
        self.enc = nn.TransformerEncoder(layer(), cfg.layers, enable_nested_tensor=False)
        self.to_stats = nn.Linear(d, 2 * d)
        self.dec_pos = nn.Parameter(torch.zeros(1, cfg.clip_frames, d))
        self.dec = nn.TransformerEncoder(layer(), cfg.layers, enable_nested_tensor=False)
        self.out = nn.Linear(d, cfg.feature_dim)
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.dec_pos, std=0.02)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, T, F), mask: (B, T) bool -> mu, logvar (B, T/ds, D), token mask (B, T/ds)."""
        h = self.enc(self.inp(x) + self.pos, src_key_padding_mask=~mask)
        b, t, d = h.shape
        ds = self.cfg.downsample
        m = mask.float().view(b, t // ds, ds, 1)
        tok = (h.view(b, t // ds, ds, d) * m).sum(2) / m.sum(2).clamp(min=1.0)
        mu, logvar = self.to_stats(tok).chunk(2, dim=-1)
        return mu, logvar.clamp(-8, 8), m.squeeze(-1).amax(2) > 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = z.repeat_interleave(self.cfg.downsample, dim=1) + self.dec_pos
        return self.out(self.dec(h))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, eps: torch.Tensor):
        """One training pass (DDP wraps forward): reconstruction of x with z = mu + eps * sigma."""
        mu, logvar, tm = self.encode(x, mask)
        return self.decode(mu + eps * torch.exp(0.5 * logvar)), mu, logvar, tm

    @staticmethod
    def pooled(mu: torch.Tensor, tok_mask: torch.Tensor) -> torch.Tensor:
        m = tok_mask.float().unsqueeze(-1)
        return (mu * m).sum(1) / m.sum(1).clamp(min=1.0)


@dataclass
class TrainedVAE:
    model: MotionVAE
    mean: np.ndarray  # (F,) feature normalisation
    std: np.ndarray
    losses: list[float]

    def content_hash(self) -> str:
        return hashlib.sha256(_weights_bytes(self)).hexdigest()[:16]


def pad_batch(feats: list[np.ndarray], clip_frames: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((len(feats), clip_frames, feats[0].shape[1]), np.float32)
    mask = np.zeros((len(feats), clip_frames), bool)
    for i, f in enumerate(feats):
        n = min(len(f), clip_frames)
        x[i, :n], mask[i, :n] = f[:n], True
    return x, mask


@dataclass
class VAETask:
    """The VAE as a `robomirror.trainer` task: the same loop, checkpoints and Ray/DDP path as every model."""

    data: object  # latents.motion_stream.FeatureDataset
    cfg: VAEConfig
    name: str = "motion-vae"

    def build_model(self) -> MotionVAE:
        return MotionVAE(self.cfg)

    def dataset(self):
        return self.data

    def collate(self, items):
        return torch.stack([x for x, _ in items]), torch.stack([m for _, m in items])

    def loss(self, model, batch, gen, rows, global_batch):
        xb, mb = batch
        tokens = self.cfg.clip_frames // self.cfg.downsample
        eps = torch.randn(global_batch, tokens, self.cfg.latent_dim, generator=gen)[rows]
        rec, mu, logvar, tm = model(xb, mb, eps)
        w = mb.float().unsqueeze(-1)
        rec_loss = ((rec - xb) ** 2 * w).sum() / (w.sum() * xb.shape[-1])
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()) * tm.float().unsqueeze(-1)).sum() / (tm.sum() * mu.shape[-1])
        return rec_loss + self.cfg.kl_weight * kl, {"reconstruction": float(rec_loss.detach())}


def train_on(source: list, cfg: VAEConfig, mean: np.ndarray, std: np.ndarray, out_dir: Path | None = None,
             workers: int = 1, executor: str = "local", ray_address: str | None = None,
             progress: bool = False) -> TrainedVAE:
    """Train on `source` (ClipRefs streamed from the shards, or feature arrays) with the shared trainer.
    Deterministic for a seed; checkpoints (resumable) go to `out_dir`, else a temporary folder. A fixed
    step budget (cfg.steps), not epochs: the time does not grow with the corpus. `progress`: a bar
    over the steps (local executor; the Ray path reports through Ray Train)."""
    import tempfile

    from tqdm import tqdm

    from latents.motion_stream import FeatureDataset
    from robomirror.trainer import TrainConfig, fit, latest_checkpoint, load_checkpoint

    task = VAETask(FeatureDataset(source, mean, std, cfg.clip_frames), cfg)
    tcfg = TrainConfig(steps=cfg.steps, global_batch=min(cfg.batch, len(source)) // workers * workers or workers,
                       lr=cfg.lr, grad_clip=0.0, seed=cfg.seed, ckpt_every=max(cfg.steps // 4, 1), log_every=1,
                       workers=workers, executor=executor, ray_address=ray_address)
    with tempfile.TemporaryDirectory(prefix="robomirror-vae-") as tmp, \
            tqdm(total=cfg.steps, desc="motion VAE", unit="step", disable=not progress) as bar:
        out = Path(out_dir) if out_dir is not None else Path(tmp)

        def report(row: dict) -> None:
            bar.n = int(row["step"])
            bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
            bar.refresh()

        res = fit(task, tcfg, out, resume=latest_checkpoint(out) is not None, on_report=report)
        model = MotionVAE(cfg)
        load_checkpoint(latest_checkpoint(out), model)
    model.eval()
    return TrainedVAE(model, mean, std, [h["reconstruction"] for h in res.history])


def train(feats: list[np.ndarray], cfg: VAEConfig) -> TrainedVAE:
    """In-memory features (tests, small sets): the same trainer as the streaming build."""
    allf = np.concatenate(feats)
    return train_on(feats, cfg, allf.mean(0).astype(np.float32), (allf.std(0) + 1e-3).astype(np.float32))


@torch.no_grad()
def encode(vae: TrainedVAE, feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """-> tokens (N, T/ds, D) float32, pooled (N, D) float32, valid token counts."""
    x, mask = pad_batch([(f - vae.mean) / vae.std for f in feats], vae.model.cfg.clip_frames)
    mu, _, tm = vae.model.encode(torch.from_numpy(x), torch.from_numpy(mask))
    pooled = MotionVAE.pooled(mu, tm)
    return mu.numpy(), pooled.numpy(), tm.sum(1).tolist()


@torch.no_grad()
def reconstruct(vae: TrainedVAE, feats: list[np.ndarray]) -> list[np.ndarray]:
    x, mask = pad_batch([(f - vae.mean) / vae.std for f in feats], vae.model.cfg.clip_frames)
    mu, _, _ = vae.model.encode(torch.from_numpy(x), torch.from_numpy(mask))
    rec = vae.model.decode(mu).numpy() * vae.std + vae.mean
    return [rec[i, : len(f)] for i, f in enumerate(feats)]


def _weights_bytes(vae: TrainedVAE) -> bytes:
    from safetensors.torch import save

    state = {k: v.contiguous() for k, v in vae.model.state_dict().items()}
    state["norm.mean"] = torch.from_numpy(vae.mean.astype(np.float32))
    state["norm.std"] = torch.from_numpy(vae.std.astype(np.float32))
    return save(state)


def save_checkpoint(vae: TrainedVAE, directory: Path) -> str:
    """Writes model.safetensors + config.json; returns the content hash."""
    publish_bytes(directory / "model.safetensors", _weights_bytes(vae))
    publish_bytes(directory / "config.json", json.dumps(asdict(vae.model.cfg), indent=1).encode())
    return vae.content_hash()


def load_checkpoint(directory: Path) -> TrainedVAE:
    cfg = VAEConfig(**json.loads((Path(directory) / "config.json").read_text()))
    state = load_file(str(Path(directory) / "model.safetensors"))
    mean, std = state.pop("norm.mean").numpy(), state.pop("norm.std").numpy()
    model = MotionVAE(cfg)
    model.load_state_dict(state)
    model.eval()
    return TrainedVAE(model, mean, std, [])


