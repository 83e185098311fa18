"""The models `robomirror.trainer.fit` trains here: the DiT (video latent -> motion latent), the
evaluator (motion-text dual encoder) and the alignment baseline. Each task is a small picklable
description (paths, configs); datasets are opened in the process that trains (Ray workers included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from robomirror.dit import DiTConfig, NormalizedDiT
from robomirror.flow import FlowConfig, noised, sample_tau, target, tau_buckets
from train.data import ClipDataset, Split, collate
from train.evaluator import EvaluatorConfig, MotionTextEncoder, frame_mask_from_tokens, info_nce, load_vae


@dataclass
class StoreSide:
    """One side of a split at pinned versions."""

    store_dir: str
    versions: dict[str, int]
    split: Split
    side: str = "train"
    _ds: ClipDataset | None = field(default=None, repr=False, compare=False)

    def dataset(self) -> ClipDataset:
        if self._ds is None:
            self._ds = ClipDataset(Path(self.store_dir), self.versions, self.split, self.side)
        return self._ds

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ds": None}


def latent_stats(ds: ClipDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std of the real motion tokens (flow matching wants unit-scale data), in
    one streaming pass of float64 sums: memory for one clip, not for the split."""
    total = sq = None
    n = 0
    for i in range(len(ds)):
        t = ds[i]["motion_tokens"].double()
        total = t.sum(0) if total is None else total + t.sum(0)
        sq = (t ** 2).sum(0) if sq is None else sq + (t ** 2).sum(0)
        n += len(t)
    mean = total / n
    var = (sq / n - mean ** 2).clamp_min(0.0) * n / max(n - 1, 1)  # the unbiased std, as torch.std
    return mean.float(), var.sqrt().float().clamp_min(1e-3)


@dataclass
class DiTTask:
    data: StoreSide
    dit: DiTConfig
    flow: FlowConfig = FlowConfig()
    name: str = "dit"

    def build_model(self) -> NormalizedDiT:
        model = NormalizedDiT(self.dit)
        mean, std = latent_stats(self.data.dataset())
        model.latent_mean.copy_(mean)
        model.latent_std.copy_(std)
        return model

    def dataset(self) -> ClipDataset:
        return self.data.dataset()

    def collate(self, items: list[dict]) -> dict:
        return collate(items, self.dit.motion_tokens)

    def loss(self, model, batch: dict, gen: torch.Generator, rows: slice, global_batch: int):
        core = model.module if hasattr(model, "module") else model
        latent = (batch["motion_tokens"] - core.latent_mean) / core.latent_std
        noise = torch.randn(global_batch, *latent.shape[1:], generator=gen)[rows]
        tau = sample_tau(global_batch, self.flow, np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen))))[rows]
        x = noised(latent, noise, tau)
        pred = model(x, tau_buckets(tau, self.flow), batch["video_tokens"], batch["video_mask"], batch["video_latent"],
                     batch["motion_mask"])
        err = ((pred - target(latent, noise, self.flow)) ** 2).mean(-1) * batch["motion_mask"]
        # normalised by every token slot, padded ones included: then each worker's mean, averaged by DDP,
        # is exactly the global batch's mean whatever the padding per worker
        return err.sum() / err.numel(), {}


@dataclass
class EvaluatorTask:
    data: StoreSide
    vae_id: str
    cfg: EvaluatorConfig = EvaluatorConfig()
    name: str = "evaluator"
    _vae: object = field(default=None, repr=False, compare=False)

    def vae(self):
        if self._vae is None:
            self._vae = load_vae(Path(self.data.store_dir), self.vae_id)
        return self._vae

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_vae": None}

    def build_model(self) -> MotionTextEncoder:
        return MotionTextEncoder(self.cfg)

    def dataset(self) -> ClipDataset:
        return self.data.dataset()

    def collate(self, items: list[dict]) -> dict:
        return collate(items, 30)

    def frames(self, tokens: torch.Tensor, token_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded motion features (normalised by the VAE's statistics) and their frame mask."""
        vae = self.vae()
        with torch.no_grad():
            frames = vae.model.decode(tokens)
        return frames, frame_mask_from_tokens(token_mask, vae.model.cfg.downsample)

    def loss(self, model, batch: dict, gen: torch.Generator, rows: slice, global_batch: int):
        frames, mask = self.frames(batch["motion_tokens"], batch["motion_mask"])
        motion, text = model(frames, mask, batch["text_emb"])
        return info_nce(motion, text, batch["text_emb"]), {}
