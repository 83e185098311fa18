"""Evaluator metrics on constructed embeddings with known answers: pools of 32, intervals, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from train.metrics import (
    POOL,
    MetricRow,
    chance_r_precision,
    diversity,
    evaluate,
    fid,
    frechet_gaussians,
    mm_dist,
    pooled_hits,
    r_precision,
    separation,
)


def test_r_precision_of_a_perfect_and_of_a_random_matcher():
    rng = np.random.default_rng(0)
    text = rng.normal(size=(32, 16))
    assert r_precision(text.copy(), text).tolist() == [1.0, 1.0, 1.0]
    chance = np.mean([r_precision(rng.normal(size=(32, 16)), rng.normal(size=(32, 16))) for _ in range(300)], axis=0)
    assert chance == pytest.approx([1 / 32, 2 / 32, 3 / 32], abs=0.01)  # k / batch


def test_pools_are_32_candidates_whatever_the_test_set_size():
    """Random scores on test sets of 96: R@k is k/32 (pools of 32), not k/96 (one pool of all). The
    average over 60 test sets: one set's R@3 is k/32 only within its own sampling noise (sd ~0.03)."""
    rng = np.random.default_rng(3)
    r = np.mean([pooled_hits(rng.normal(size=(96, 16)), rng.normal(size=(96, 16)), rng, draws=5).mean(0)
                 for _ in range(60)], axis=0)
    assert r == pytest.approx(chance_r_precision(32), abs=0.012)  # 3 sd of the 60-set mean
    assert chance_r_precision(32) == pytest.approx([1 / 32, 2 / 32, 3 / 32])
    text = rng.normal(size=(40, 16))
    perfect = evaluate(text, text, text, draws=3, bootstrap=50, fid_bootstrap=5)
    assert perfect.measured and perfect.pool == POOL
    assert [perfect.row(k).mean for k in ("R@1", "R@2", "R@3")] == [1.0, 1.0, 1.0]
    assert perfect.row("R@1").lo == 1.0 and perfect.row("MM-Dist").mean == 0.0


def test_a_pool_draws_31_distinct_others_never_the_query_itself():
    """A motion equidistant from every text except one wrong one: the rank depends on whether that one
    was drawn into the pool, which happens with probability 31 / (N - 1)."""
    n = 63
    text = np.zeros((n, 2))
    motion = np.full((n, 2), 1.0)
    motion[0] = [0.5, 0.5]  # query 0's own motion at distance 0.71; motion 1 closer to every text
    motion[1] = [0.1, 0.1]
    hits = pooled_hits(motion, text, np.random.default_rng(0), draws=4000)
    assert hits[0, 0] == pytest.approx(1 - 31 / (n - 1), abs=0.03)


def test_fewer_than_32_clips_is_not_a_measurement_and_says_the_chance_level():
    rng = np.random.default_rng(2)
    text = rng.normal(size=(12, 8))
    ev = evaluate(text, text, text, bootstrap=50, fid_bootstrap=5)
    assert not ev.measured and ev.pool == 12 and ev.n_clips == 12
    assert "only 12 test clips" in ev.reason and "pools of 32" in ev.reason and "8.3/16.7/25.0" in ev.reason
    with pytest.raises(ValueError, match="at least 32"):
        pooled_hits(text, text, rng)


def test_the_interval_covers_the_truth_and_shrinks_with_more_queries():
    """Random scores: the bootstrap interval of R@3 holds the chance level 3/32 in most of 40 test sets
    and is about sqrt(4) narrower at 4x the queries."""
    rng = np.random.default_rng(5)
    covered, widths = 0, {64: [], 256: []}
    for trial in range(40):
        for n in (64, 256):
            ev = evaluate(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)), rng.normal(size=(n, 8)), seed=trial,
                          draws=5, bootstrap=300, fid_bootstrap=2)
            r3 = ev.row("R@3")
            assert r3.lo <= r3.mean <= r3.hi
            widths[n].append(r3.hi - r3.lo)
            covered += n == 64 and r3.lo <= 3 / 32 <= r3.hi
    assert covered >= 34  # 95 % nominal; binomial slack for 40 trials
    assert np.mean(widths[64]) / np.mean(widths[256]) == pytest.approx(2.0, rel=0.25)


def test_separation_needs_order_and_disjoint_intervals():
    real, ours, floor = MetricRow("R@3", .9, .85, .95), MetricRow("R@3", .5, .4, .6), MetricRow("R@3", .1, .05, .15)
    assert separation("R@3", real, ours, floor).separated
    overlap = MetricRow("R@3", .2, .1, .3)
    v = separation("R@3", real, ours, MetricRow("R@3", .35, .25, .45))
    assert not v.separated and "ours" in v.text and "shuffled" in v.text and "overlap" in v.text
    v = separation("R@3", real, overlap, ours)  # ours below the floor
    assert not v.separated and "wrong way" in v.text
    # lower is better for MM-Dist: the ceiling is the smallest
    assert separation("MM-Dist", MetricRow("MM-Dist", 1, .9, 1.1), MetricRow("MM-Dist", 2, 1.8, 2.2),
                      MetricRow("MM-Dist", 3, 2.9, 3.1)).separated
    assert not separation("MM-Dist", MetricRow("MM-Dist", 3, 2.9, 3.1), MetricRow("MM-Dist", 2, 1.8, 2.2),
                          MetricRow("MM-Dist", 1, .9, 1.1)).separated
    nan = MetricRow("R@3", float("nan"), float("nan"), float("nan"))
    assert not separation("R@3", real, ours, nan).separated


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
    assert diversity(spread) == pytest.approx(5 * np.sqrt(2))


def test_every_interval_holds_its_own_estimate_fid_included():
    """Resampling with replacement inflates FID; its interval is re-centred so it still holds the estimate."""
    rng = np.random.default_rng(7)
    text = rng.normal(size=(64, 16))
    for gen in (text + rng.normal(size=(64, 16)), rng.normal(size=(64, 16)) * 2):
        ev = evaluate(gen, text, text + 0.1 * rng.normal(size=(64, 16)), draws=3, bootstrap=200, fid_bootstrap=50)
        assert all(r.lo <= r.mean <= r.hi for r in ev.rows), ev.rows
