"""Flow-matching math on constructed tensors: the path, its target, the τ sampler, Euler sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robomirror.errors import ConfigError
from robomirror.flow import FlowConfig, euler_sample, noised, sample_tau, target, tau_buckets, velocity_from


def test_path_ends_and_velocity_is_its_derivative():
    g = torch.Generator().manual_seed(0)
    latent, noise = torch.randn(4, 30, 8, generator=g), torch.randn(4, 30, 8, generator=g)
    cfg = FlowConfig()
    assert torch.allclose(noised(latent, noise, torch.zeros(4)), noise)
    assert torch.allclose(noised(latent, noise, torch.ones(4)), latent)
    tau, h = torch.full((4,), 0.3), 1e-3
    finite_diff = (noised(latent, noise, tau + h) - noised(latent, noise, tau - h)) / (2 * h)
    assert torch.allclose(target(latent, noise, cfg), finite_diff, atol=1e-3)
    assert not torch.allclose(target(latent, noise, cfg), noise - latent)  # the paper's printed sign is not it


@pytest.mark.parametrize("objective", ["velocity", "x0", "eps"])
def test_every_objective_turns_its_exact_prediction_into_the_path_velocity(objective):
    g = torch.Generator().manual_seed(1)
    latent, noise = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    cfg = FlowConfig(objective=objective)
    tau = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])
    x = noised(latent, noise, tau)
    assert torch.allclose(velocity_from(target(latent, noise, cfg), x, tau, cfg), latent - noise, atol=1e-5)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_euler_on_the_exact_field_lands_on_the_data(steps):
    """For one data point the optimal field along the straight path is constant: Euler is exact."""
    g = torch.Generator().manual_seed(2)
    latent, noise = torch.randn(3, 30, 16, generator=g), torch.randn(3, 30, 16, generator=g)
    cfg = FlowConfig(inference_steps=steps)
    field = lambda x, tau: (latent - x) / (1 - tau.view(-1, 1, 1))  # noqa: E731 - v(x, τ) for a point mass
    assert torch.allclose(euler_sample(field, noise, cfg), latent, atol=1e-5)


def test_tau_sampler_matches_the_configured_beta():
    cfg = FlowConfig()  # paper: alpha 1.0, beta 1.5 -> u ~ Beta(1, 1.5), tau = (0.999 - u) / 0.999
    tau = sample_tau(200_000, cfg, np.random.default_rng(0)).numpy().astype(np.float64)
    u = cfg.noise_s - tau * cfg.noise_s
    a, b = cfg.beta_alpha, cfg.beta_beta
    assert u.mean() == pytest.approx(a / (a + b), abs=3e-3)
    assert u.var() == pytest.approx(a * b / ((a + b) ** 2 * (a + b + 1)), abs=3e-3)
    assert tau.min() >= 0 and tau.max() <= 1 and np.median(tau) > 0.5  # the paper's choice favours the data end
    groot = sample_tau(200_000, FlowConfig(beta_alpha=1.5, beta_beta=1.0), np.random.default_rng(0)).numpy()
    assert np.median(groot) < 0.5  # GR00T's defaults favour the noise end
    assert torch.equal(sample_tau(8, cfg, np.random.default_rng(3)), sample_tau(8, cfg, np.random.default_rng(3)))


def test_buckets_and_config_validation():
    cfg = FlowConfig()
    assert tau_buckets(torch.tensor([0.0, 0.4999, 1.0]), cfg).tolist() == [0, 499, 999]
    with pytest.raises(ConfigError, match="objective must be one of"):
        FlowConfig(objective="ddim")
    with pytest.raises(ConfigError, match="Beta parameters"):
        FlowConfig(beta_alpha=0.0)
