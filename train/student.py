"""The student: an AdaLN-MLP diffusion policy on (motion latent, 26 frames of proprioception).

Table 8: three AdaLN-modulated MLP blocks of width 1792 and a final projection to the 23 joint
actions, with residual connections; x0-prediction; DDIM with 2 steps and eta = 0 at inference.
The observation normalizer lives inside the module (buffers), so the exported ONNX holds it.
Ablations by config: eps- vs x0-prediction (Table 14), eta 0 / 0.5 / DDPM ancestral sampling over
every step (Table 13), DDIM steps 2..10 (Table 12), and a plain MLP regressor (the baseline of the
paper's Figure 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from robomirror import g1_contract as g1


@dataclass(frozen=True)
class StudentConfig:
    kind: str = "diffusion"  # "diffusion" | "mlp"
    width: int = 1792
    blocks: int = 3
    prediction: str = "x0"  # "x0" | "eps"
    train_timesteps: int = 100
    ddim_steps: int = 2
    eta: float = 0.0
    sampler: str = "ddim"  # "ddim" | "ddpm" (ancestral, every timestep)
    latent_dim: int = 256
    height_map: bool = False  # the contract's optional terrain slice (121) last in its observation (issue 22)

    @property
    def obs_dim(self) -> int:
        return g1.student_obs(self.latent_dim, self.height_map).dim


def cosine_alpha_bar(T: int) -> torch.Tensor:
    s = 0.008
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (f[1:] / f[0]).clamp(1e-5, 0.9999).float()  # alpha_bar at t = 0..T-1


class AdaLNBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.mod = nn.Linear(width, 3 * width)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.mod(c).chunk(3, -1)
        return h + gate * self.mlp(self.norm(h) * (1 + scale) + shift)


class ObsNormalizer(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp_min(1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).clamp(-10, 10)


class DiffusionStudent(nn.Module):
    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.normalizer = ObsNormalizer(cfg.obs_dim)
        self.cond = nn.Sequential(nn.Linear(cfg.obs_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.time = nn.Sequential(nn.Linear(64, w), nn.SiLU(), nn.Linear(w, w))
        self.inp = nn.Linear(g1.N_ACT, w)
        self.blocks = nn.ModuleList(AdaLNBlock(w) for _ in range(cfg.blocks))
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False)
        self.out = nn.Linear(w, g1.N_ACT)
        self.skip = nn.Linear(g1.N_ACT, g1.N_ACT)  # residual path from the noisy action to the output
        self.register_buffer("alpha_bar", cosine_alpha_bar(cfg.train_timesteps))

    def _time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        half = 32
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        ang = t.float()[:, None] * freqs[None]
        return torch.cat([ang.sin(), ang.cos()], -1)

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, obs_n: torch.Tensor) -> torch.Tensor:
        """The network's raw output (x0 or eps, per cfg.prediction) for normalized observations."""
        c = self.cond(obs_n) + self.time(self._time_embedding(t))
        h = self.inp(x_t)
        for b in self.blocks:
            h = b(h, c)
        return self.out(self.final_norm(h)) + self.skip(x_t)

    def loss(self, obs: torch.Tensor, action: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = len(obs)
        t = torch.randint(0, self.cfg.train_timesteps, (n,), generator=gen)
        eps = torch.randn(action.shape, generator=gen)
        ab = self.alpha_bar[t][:, None]
        x_t = ab.sqrt() * action + (1 - ab).sqrt() * eps
        pred = self.denoise(x_t, t, self.normalizer(obs))
        return torch.mean((pred - (action if self.cfg.prediction == "x0" else eps)) ** 2)

    def schedule(self) -> list[int]:
        T = self.cfg.train_timesteps
        if self.cfg.sampler == "ddpm":
            return list(range(T - 1, -1, -1))
        k = self.cfg.ddim_steps
        return [int(round(T - 1 - i * T / k)) for i in range(k)]

    def forward(self, obs: torch.Tensor, noise: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Sample an action from the initial noise: DDIM (eta from cfg) or DDPM; eta = 0 is deterministic
        (the exported policy); eta > 0 draws fresh noise per step from `gen`."""
        obs_n = self.normalizer(obs)
        x = noise
        ts = self.schedule()
        eta = 1.0 if self.cfg.sampler == "ddpm" else self.cfg.eta
        for i, t in enumerate(ts):
            tt = torch.full((obs.shape[0],), t, dtype=torch.long, device=obs.device)
            ab = self.alpha_bar[t]
            pred = self.denoise(x, tt, obs_n)
            if self.cfg.prediction == "x0":
                x0 = pred
                eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            else:
                eps = pred
                x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            if i == len(ts) - 1:
                x = x0
                break
            ab_next = self.alpha_bar[ts[i + 1]]
            sigma = eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)).clamp_min(0).sqrt()
            x = ab_next.sqrt() * x0 + (1 - ab_next - sigma ** 2).clamp_min(0).sqrt() * eps
            if eta > 0:
                x = x + sigma * torch.randn(x.shape, generator=gen)
        return x


class MLPStudent(nn.Module):
    """The non-diffusion baseline: the same input, an MLP regressing the teacher's action."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalizer = ObsNormalizer(cfg.obs_dim)
        layers, d = [], cfg.obs_dim
        for _ in range(cfg.blocks):
            layers += [nn.Linear(d, cfg.width), nn.SiLU()]
            d = cfg.width
        self.net = nn.Sequential(*layers, nn.Linear(d, g1.N_ACT))

    def loss(self, obs: torch.Tensor, action: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return torch.mean((self.net(self.normalizer(obs)) - action) ** 2)

    def forward(self, obs: torch.Tensor, noise: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return self.net(self.normalizer(obs)) + 0.0 * noise


def build_student(cfg: StudentConfig) -> nn.Module:
    return DiffusionStudent(cfg) if cfg.kind == "diffusion" else MLPStudent(cfg)
