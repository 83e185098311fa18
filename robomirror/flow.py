"""Flow matching for the motion latent (RoboMirror §3.2), as pure tensor math.

Path and target. The paper writes the noised latent as x_τ = τ·l_motion + (1 − τ)·ε, ε ~ N(0, I),
τ ∈ [0, 1] (τ = 1 is the data), and then says the network predicts "ε − ε_motion". That target does
not match its own path: the derivative of x_τ in τ is l_motion − ε, which is what flow matching
regresses (and what GR00T N1's head, which the paper cites for this design, uses: `velocity =
actions - noise`). We use the path as printed and its true velocity, l_motion − ε.

τ sampling follows GR00T N1's `sample_time`: τ = (s − u) / s with u ~ Beta(α, β) and s = 0.999,
so τ ∈ (0, 1]. The paper's Table 8 gives α = 1.0, β = 1.5; GR00T's defaults are α = 1.5, β = 1.0
(u near 1, so τ near 0: it trains mostly on noisy inputs), the paper's swap puts u near 0 and τ near
1 (mostly near the data). The time embedding sees τ in 1000 buckets (`int(τ · 1000)`), as GR00T.

Inference integrates dx/dτ = v(x, τ) with Euler steps from τ = 0 (pure noise) to τ = 1; the paper
uses 2 steps ("Inference Timesteps 2"); GR00T uses 4.

The ablation objectives (paper Table 15) share the path: "x0" predicts l_motion, "eps" predicts ε;
each prediction is turned into a velocity for sampling, so one sampler serves all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

OBJECTIVES = ("velocity", "x0", "eps")


@dataclass(frozen=True)
class FlowConfig:
    beta_alpha: float = 1.0  # τ sampler: u ~ Beta(alpha, beta), τ = (s - u) / s (paper Table 8)
    beta_beta: float = 1.5
    noise_s: float = 0.999  # GR00T's s: τ never reaches 0 exactly
    timestep_buckets: int = 1000  # the time embedding sees int(τ · buckets)
    inference_steps: int = 2  # Euler steps from noise at sampling (paper: 2)
    objective: str = "velocity"  # "velocity" (flow matching) | "x0" | "eps" (Table 15 ablations)

    def __post_init__(self) -> None:
        problems = []
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not (self.beta_alpha > 0 and self.beta_beta > 0):
            problems.append(f"Beta parameters must be > 0, got {self.beta_alpha}, {self.beta_beta}")
        if not 0 < self.noise_s <= 1:
            problems.append(f"noise_s must be in (0, 1], got {self.noise_s}")
        if self.inference_steps < 1 or self.timestep_buckets < 1:
            problems.append("inference_steps and timestep_buckets must be >= 1")
        if problems:
            from robomirror.errors import ConfigError

            raise ConfigError("invalid flow config: " + "; ".join(problems))


def sample_tau(batch: int, cfg: FlowConfig, rng: np.random.Generator) -> torch.Tensor:
    """(batch,) float32 τ ∈ [0, 1]: τ = (s − u) / s, u ~ Beta(α, β) (GR00T N1's sampler, the paper's
    α, β). A numpy Generator (its state goes into checkpoints as JSON) makes it reproducible."""
    u = rng.beta(cfg.beta_alpha, cfg.beta_beta, size=batch)
    return torch.from_numpy(np.clip((cfg.noise_s - u) / cfg.noise_s, 0.0, 1.0).astype(np.float32))


def tau_buckets(tau: torch.Tensor, cfg: FlowConfig) -> torch.Tensor:
    """(B,) long: the discretised time the network embeds (GR00T: int(τ · 1000))."""
    return (tau * cfg.timestep_buckets).long().clamp(0, cfg.timestep_buckets - 1)


def noised(latent: torch.Tensor, noise: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """x_τ = τ·l_motion + (1 − τ)·ε; latent, noise: (B, ...); tau: (B,)."""
    t = tau.view(-1, *([1] * (latent.dim() - 1)))
    return t * latent + (1.0 - t) * noise


def target(latent: torch.Tensor, noise: torch.Tensor, cfg: FlowConfig) -> torch.Tensor:
    """What the network regresses: dx_τ/dτ = l_motion − ε ("velocity"), l_motion ("x0") or ε ("eps")."""
    if cfg.objective == "velocity":
        return latent - noise
    return latent if cfg.objective == "x0" else noise


def velocity_from(pred: torch.Tensor, x: torch.Tensor, tau: torch.Tensor, cfg: FlowConfig) -> torch.Tensor:
    """The path's velocity from a prediction of any objective (x = τ·l + (1 − τ)·ε)."""
    if cfg.objective == "velocity":
        return pred
    t = tau.view(-1, *([1] * (x.dim() - 1)))
    if cfg.objective == "x0":  # ε = (x − τ·l) / (1 − τ)
        return (pred - x) / (1.0 - t).clamp_min(1e-3)
    return (x - pred) / t.clamp_min(1e-3)  # eps: l = (x − (1 − τ)·ε) / τ, v = l − ε = (x − ε) / τ


def euler_sample(predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                 cfg: FlowConfig) -> torch.Tensor:
    """Integrate from τ = 0 (noise) to τ = 1 in `cfg.inference_steps` Euler steps.

    predict(x_τ, τ) -> the network's prediction for the configured objective; noise: (B, ...)."""
    x = noise
    steps = cfg.inference_steps
    for k in range(steps):
        tau = torch.full((noise.shape[0],), k / steps, device=noise.device, dtype=noise.dtype)
        x = x + velocity_from(predict(x, tau), x, tau, cfg) / steps
    return x
