"""Text-to-motion metrics with the T2M protocol (Guo et al. 2022; TMR's "guo" protocol), on evaluator
embeddings, each with a 95 % interval, and the verdict whether Real / ours / shuffled are separated.

- **R-precision R@1/2/3**: every query text ranks its own motion among a pool of 32 candidates (its own
  and 31 others drawn at random from the test set, Euclidean distance), repeated over `draws` random
  pool draws. A query's score is its hit rate over the draws; R@k is the mean over queries. Chance is
  k / 32. With fewer than 32 test clips no pool of 32 exists: the numbers (on one pool of all clips)
  are returned flagged as *not a measurement*, with the chance level of that pool.
- **MM-Dist**: mean Euclidean distance between each motion and its own text.
- **FID** between real and generated motion embeddings; **Diversity**: the mean distance over all
  pairs of motions (the expectation of the protocol's 300 random pairs).
- **95 % interval**: percentile bootstrap over the test clips (queries resampled with replacement,
  per-query values averaged over the pool draws), so the interval says how much another test set of
  the same size could move the number; the pool-draw noise is averaged out before it. FID is biased
  upward on a resample (a clip drawn twice shrinks the covariance), so its interval is the bootstrap
  spread around the resamples' median, re-centred on the estimate.

All functions take numpy arrays: motion (N, D) and text (N, D) embeddings, row i of each from clip i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

POOL = 32  # the protocol's candidates per query (the true motion + 31 others)
TOP_K = 3
DRAWS = 20  # random pool draws per query
BOOTSTRAP = 1000  # resamples of the test clips for the 95 % interval
FID_BOOTSTRAP = 200  # FID needs a matrix square root per resample
INTERVAL = "95% percentile bootstrap over test clips"
HIGHER_IS_BETTER = {"R@1": True, "R@2": True, "R@3": True, "MM-Dist": False, "FID": False, "Diversity": None}


def r_precision(motion: np.ndarray, text: np.ndarray, top_k: int = TOP_K) -> np.ndarray:
    """(top_k,) fraction of texts whose own motion is among the k nearest motions (Euclidean), k = 1..top_k,
    within one batch (all rows compete)."""
    d = np.linalg.norm(text[:, None] - motion[None], axis=-1)  # (N texts, N motions)
    rank = (d < np.diag(d)[:, None]).sum(1)  # motions strictly closer than the right one
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)])


def pooled_hits(motion: np.ndarray, text: np.ndarray, rng: np.random.Generator, pool: int = POOL,
                draws: int = DRAWS, top_k: int = TOP_K) -> np.ndarray:
    """(N, top_k) per query, the fraction of `draws` random pools of `pool` candidates (its own motion +
    pool - 1 others drawn without replacement from the other N - 1) in which its motion ranks within k.
    Needs N >= pool."""
    n = len(motion)
    if n < pool:
        raise ValueError(f"pools of {pool} need at least {pool} clips, got {n}")
    d = np.linalg.norm(text[:, None] - motion[None], axis=-1)  # (N texts, N motions)
    own = np.diag(d)[:, None]
    hits = np.zeros((n, top_k))
    for _ in range(draws):
        keys = rng.random((n, n))
        np.fill_diagonal(keys, np.inf)  # never draw the query's own motion as a distractor
        others = np.argpartition(keys, pool - 2, axis=1)[:, :pool - 1]  # uniform (pool-1)-subsets
        rank = (np.take_along_axis(d, others, axis=1) < own).sum(1)
        hits += np.stack([rank < k for k in range(1, top_k + 1)], axis=1)
    return hits / draws


def chance_r_precision(pool: int, top_k: int = TOP_K) -> np.ndarray:
    """R@k of a matcher that ranks at random in a pool of `pool` candidates: k / pool."""
    return np.array([min(k / pool, 1.0) for k in range(1, top_k + 1)])


def mm_dist(motion: np.ndarray, text: np.ndarray) -> float:
    """Mean Euclidean distance between each motion and its own text."""
    return float(np.linalg.norm(motion - text, axis=-1).mean())


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings."""
    mu1, mu2 = real.mean(0), generated.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return max(0.0, float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)))  # >= 0 but for rounding


def frechet_gaussians(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The closed form the FID estimates: ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)."""
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def diversity(motion: np.ndarray) -> float:
    """Mean distance over all pairs of distinct rows (the expectation of the protocol's random pairs)."""
    n = len(motion)
    if n < 2:
        return float("nan")
    d = np.linalg.norm(motion[:, None] - motion[None], axis=-1)
    return float(d.sum() / (n * (n - 1)))


@dataclass(frozen=True)
class MetricRow:
    name: str  # "R@1" ...
    mean: float  # on the whole test split
    lo: float  # 95 % interval (INTERVAL)
    hi: float

    @property
    def ci95(self) -> float:
        """Half-width of the interval (the `evals` table's column)."""
        return (self.hi - self.lo) / 2


@dataclass(frozen=True)
class Evaluation:
    rows: list[MetricRow]
    pool: int  # candidates per query actually used
    n_clips: int
    measured: bool  # False: fewer clips than POOL, the numbers are not a measurement
    reason: str  # why not measured ("" when measured)

    def row(self, name: str) -> MetricRow:
        return next(r for r in self.rows if r.name == name)


def _interval(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanpercentile(values, [2.5, 97.5]) if np.isfinite(values).any() else (np.nan, np.nan)
    return float(lo), float(hi)


def _centred(estimate: float, values: np.ndarray) -> tuple[float, float]:
    """The bootstrap's 2.5-97.5 % spread about its median, placed around `estimate` (for a statistic
    whose resamples are biased, so the percentile interval could miss the estimate itself)."""
    lo, hi = _interval(values)
    med = float(np.nanmedian(values)) if np.isfinite(values).any() else np.nan
    return estimate - (med - lo), estimate + (hi - med)


def evaluate(motion: np.ndarray, text: np.ndarray, real_motion: np.ndarray, seed: int = 0, draws: int = DRAWS,
             pool: int = POOL, bootstrap: int = BOOTSTRAP, fid_bootstrap: int = FID_BOOTSTRAP) -> Evaluation:
    """The protocol's table for one method (rows in order R@1, R@2, R@3, MM-Dist, FID, Diversity).

    With fewer clips than `pool`, R@k is computed on one pool of all clips and the evaluation is
    flagged not measured, with the reason: a caller must not print it as a result."""
    rng = np.random.default_rng(seed)
    n = len(motion)
    measured = n >= pool
    if measured:
        hits = pooled_hits(motion, text, rng, pool, draws)
        used = pool
    else:
        d = np.linalg.norm(text[:, None] - motion[None], axis=-1)
        rank = (d < np.diag(d)[:, None]).sum(1)
        hits = np.stack([rank < k for k in range(1, TOP_K + 1)], axis=1).astype(np.float64)
        used = n
    per_query = {f"R@{k}": hits[:, k - 1] for k in range(1, TOP_K + 1)}
    per_query["MM-Dist"] = np.linalg.norm(motion - text, axis=-1)
    point = {k: float(v.mean()) for k, v in per_query.items()}
    point["FID"] = fid(real_motion, motion) if n > 2 else float("nan")
    point["Diversity"] = diversity(motion)
    idx = rng.integers(0, n, size=(bootstrap, n))
    boot = {k: v[idx].mean(1) for k, v in per_query.items()}
    boot["FID"] = np.array([fid(real_motion[i], motion[i]) for i in idx[:fid_bootstrap]]) if n > 2 else np.full(1, np.nan)
    boot["Diversity"] = np.array([_resampled_diversity(motion, i) for i in idx[:fid_bootstrap]])
    rows = [MetricRow(k, point[k], *(_centred(point[k], boot[k]) if k == "FID" else _interval(boot[k])))
            for k in ("R@1", "R@2", "R@3", "MM-Dist", "FID", "Diversity")]
    reason = "" if measured else (f"only {n} test clips: R-precision needs pools of {pool} candidates (the T2M "
                                  f"protocol); one pool of all {n} was used, where chance R@1/2/3 is "
                                  + "/".join(f"{100 * c:.1f}" for c in chance_r_precision(n)) + " %")
    return Evaluation(rows, used, n, measured, reason)


def _resampled_diversity(motion: np.ndarray, idx: np.ndarray) -> float:
    """Diversity of a bootstrap resample: pairs of distinct draws (a clip drawn twice is no pair)."""
    m = motion[idx]
    d = np.linalg.norm(m[:, None] - m[None], axis=-1)
    distinct = idx[:, None] != idx[None]
    return float(d[distinct].mean()) if distinct.any() else float("nan")


@dataclass(frozen=True)
class Verdict:
    metric: str
    separated: bool  # ordered ceiling > method > floor with pairwise disjoint intervals
    text: str


def separation(metric: str, ceiling: MetricRow, method: MetricRow, floor: MetricRow,
               names: tuple[str, str, str] = ("Real", "ours", "shuffled")) -> Verdict:
    """Whether ceiling, method and floor come out ordered on `metric` with non-overlapping intervals.

    Disjoint marginal 95 % intervals is a conservative test (a paired one would separate more often);
    anything short of it is reported as not separated, naming the pair that overlaps or is misordered."""
    better = HIGHER_IS_BETTER.get(metric)
    if better is None:
        return Verdict(metric, False, f"{metric}: no better direction, no ordering claimed")
    rows = list(zip(names, (ceiling, method, floor), strict=True))
    problems = []
    for (na, a), (nb, b) in zip(rows, rows[1:], strict=False):  # a should beat b
        if not all(np.isfinite([a.lo, a.hi, b.lo, b.hi])):
            problems.append(f"{na} or {nb} has no interval")
            continue
        ahead = a.lo > b.hi if better else a.hi < b.lo
        if not ahead:
            misordered = a.mean < b.mean if better else a.mean > b.mean
            how = "ordered the wrong way" if misordered else "intervals overlap"
            problems.append(f"{na} [{_fmt(metric, a.lo)}, {_fmt(metric, a.hi)}] vs {nb} "
                            f"[{_fmt(metric, b.lo)}, {_fmt(metric, b.hi)}]: {how}")
    if problems:
        return Verdict(metric, False, f"{metric}: NOT separated — " + "; ".join(problems))
    sign = " > " if better else " < "
    return Verdict(metric, True, f"{metric}: separated, {sign.join(names)} with disjoint 95% intervals")


def _fmt(metric: str, v: float) -> str:
    return f"{100 * v:.1f}" if metric.startswith("R@") else f"{v:.2f}"
