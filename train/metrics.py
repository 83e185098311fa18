"""Text-to-motion metrics with the T2M protocol (Guo et al. 2022; TMR's "guo" protocol), on evaluator
embeddings: R-precision R@1/2/3 and MM-Dist on shuffled batches of 32 (Euclidean distance), FID between
real and generated motion embeddings, Diversity over random pairs; each replicated with a 95% CI.

All functions take numpy arrays: motion (N, D) and text (N, D) embeddings, row i of each from clip i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

BATCH = 32  # the protocol's batch of candidates per query
DIVERSITY_PAIRS = 300
REPLICATIONS = 20


def r_precision(motion: np.ndarray, text: np.ndarray, top_k: int = 3) -> np.ndarray:
    """(top_k,) fraction of texts whose own motion is among the k nearest motions (Euclidean), k = 1..top_k,
    within one batch (all rows compete)."""
    d = np.linalg.norm(text[:, None] - motion[None], axis=-1)  # (N texts, N motions)
    rank = (d < np.diag(d)[:, None]).sum(1)  # motions strictly closer than the right one
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)])


def mm_dist(motion: np.ndarray, text: np.ndarray) -> float:
    """Mean Euclidean distance between each motion and its own text."""
    return float(np.linalg.norm(motion - text, axis=-1).mean())


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings."""
    mu1, mu2 = real.mean(0), generated.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def frechet_gaussians(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The closed form the FID estimates: ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)."""
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def diversity(motion: np.ndarray, rng: np.random.Generator, pairs: int = DIVERSITY_PAIRS) -> float:
    """Mean distance between `pairs` random pairs of motions (fewer motions: every pair once)."""
    n = len(motion)
    if n < 2:
        return float("nan")
    i, j = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    keep = i != j
    return float(np.linalg.norm(motion[i[keep]] - motion[j[keep]], axis=-1).mean())


@dataclass(frozen=True)
class MetricRow:
    name: str  # "R@1" ...
    mean: float
    ci95: float  # half-width of the 95% interval over replications


def evaluate(motion: np.ndarray, text: np.ndarray, real_motion: np.ndarray, seed: int = 0,
             replications: int = REPLICATIONS, batch: int = BATCH) -> tuple[list[MetricRow], int]:
    """The protocol's table for one method; returns (rows, batch size used). With fewer clips than
    `batch`, every replication uses all clips as one batch (the caller prints that)."""
    rng = np.random.default_rng(seed)
    n = len(motion)
    size = min(batch, n)
    per = {k: [] for k in ("R@1", "R@2", "R@3", "MM-Dist", "FID", "Diversity")}
    for _ in range(replications):
        order = rng.permutation(n)
        r, mm = [], []
        for start in range(0, n - size + 1, size):
            b = order[start:start + size]
            r.append(r_precision(motion[b], text[b]))
            mm.append(mm_dist(motion[b], text[b]))
        r = np.mean(r, axis=0)
        per["R@1"].append(r[0])
        per["R@2"].append(r[1])
        per["R@3"].append(r[2])
        per["MM-Dist"].append(float(np.mean(mm)))
        per["FID"].append(fid(real_motion, motion) if n > 2 else float("nan"))
        per["Diversity"].append(diversity(motion, rng))
    rows = []
    for k, v in per.items():
        v = np.asarray(v, dtype=np.float64)
        rows.append(MetricRow(k, float(v.mean()), float(1.96 * v.std() / np.sqrt(len(v)))))
    return rows, size
