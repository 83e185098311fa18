"""Evaluator metrics on constructed embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from train.metrics import diversity, evaluate, fid, frechet_gaussians, mm_dist, r_precision


def test_r_precision_of_a_perfect_and_of_a_random_matcher():
    rng = np.random.default_rng(0)
    text = rng.normal(size=(32, 16))
    assert r_precision(text.copy(), text).tolist() == [1.0, 1.0, 1.0]
    chance = np.mean([r_precision(rng.normal(size=(32, 16)), rng.normal(size=(32, 16))) for _ in range(300)], axis=0)
    assert chance == pytest.approx([1 / 32, 2 / 32, 3 / 32], abs=0.01)  # k / batch


def test_fid_of_identical_sets_is_zero_and_of_two_gaussians_the_closed_form():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 4))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)
    mu1, mu2 = np.zeros(4), np.array([1.0, -2.0, 0.5, 0.0])
    s1, s2 = np.diag([1.0, 2.0, 0.5, 1.0]), np.diag([2.0, 1.0, 1.0, 3.0])
    a = rng.multivariate_normal(mu1, s1, size=200_000)
    b = rng.multivariate_normal(mu2, s2, size=200_000)
    exact = frechet_gaussians(mu1, s1, mu2, s2)
    expected = ((mu1 - mu2) ** 2).sum() + sum(x + y - 2 * np.sqrt(x * y) for x, y in zip([1, 2, .5, 1], [2, 1, 1, 3],
                                                                                      strict=True))
    assert exact == pytest.approx(expected)
    assert fid(a, b) == pytest.approx(exact, rel=0.02)


def test_mm_dist_and_diversity():
    m = np.zeros((10, 3))
    t = np.ones((10, 3))
    assert mm_dist(m, t) == pytest.approx(np.sqrt(3))
    spread = np.eye(3) * 5
    assert diversity(spread, np.random.default_rng(0)) == pytest.approx(5 * np.sqrt(2))


def test_evaluate_uses_the_whole_split_when_it_is_smaller_than_a_batch():
    rng = np.random.default_rng(2)
    text = rng.normal(size=(12, 8))
    rows, size = evaluate(text, text, text, replications=3)
    by = {r.name: r for r in rows}
    assert size == 12 and by["R@1"].mean == 1.0 and by["MM-Dist"].mean == 0.0 and by["FID"].mean == pytest.approx(0, abs=1e-6)
    rows, size = evaluate(rng.normal(size=(70, 8)), text.repeat(6, 0)[:70], text, replications=4)
    assert size == 32
