"""Repairs of body-capture streams, as the official Nymeria body loader makes them.

`nymeria/body_motion_provider.py` (facebookresearch/nymeria_dataset) does not refuse a sequence for
a bad timestamp step or a dropped quaternion; it repairs them:
- every step that differs from the nominal one (1e6/240 us for XSens) by more than 1 ms is replaced
  by the nominal step, and the repair is refused only when the corrected clock ends more than
  10 ms away from the original;
- a segment quaternion with norm < 0.5 is replaced by the same segment's previous one (identity on
  the first frame).
We do the same and return what was repaired, so each clip's meta can say so.
"""

from __future__ import annotations

import numpy as np

from ingest.failures import Reason
from robomirror.errors import SourceError

STEP_TOLERANCE_US = 1_000  # a step further than this from nominal is repaired [us]
DRIFT_TOLERANCE_US = 10_000  # a repair may move the last timestamp at most this far [us]
QUAT_MIN_NORM = 0.5  # below this a quaternion is a dropped sample


def repair_timestamps_us(t_us: np.ndarray, dt_nominal_us: float, path: str, name: str) -> tuple[np.ndarray, int]:
    """(repaired timestamps (N,) float64 [us], number of repaired steps)."""
    t = np.asarray(t_us, dtype=np.float64)
    if len(t) < 2:
        return t, 0
    dt = np.diff(t)
    bad = np.abs(dt - dt_nominal_us) > STEP_TOLERANCE_US
    if not bad.any():
        return t, 0
    dt = np.where(bad, dt_nominal_us, dt)
    fixed = t[0] + np.concatenate([[0.0], np.cumsum(dt)])
    drift = abs(fixed[-1] - t[-1])
    if drift > DRIFT_TOLERANCE_US:
        i = int(np.argmax(bad))
        raise SourceError(Reason.NON_MONOTONIC_TIME, path,
                          f"{name}: {int(bad.sum())} steps differ from the nominal {dt_nominal_us:.1f} us (first at "
                          f"frame {i + 1}); replacing them moves the clock by {drift / 1e3:.1f} ms, more than the "
                          f"{DRIFT_TOLERANCE_US / 1e3:.0f} ms the official loader accepts")
    return fixed, int(bad.sum())


def nominal_step_us(t_us: np.ndarray) -> float:
    """The stream's own nominal step: the median step [us]."""
    return float(np.median(np.diff(np.asarray(t_us, dtype=np.float64)))) if len(t_us) > 1 else 1.0


def repair_quaternions_wxyz(q: np.ndarray) -> tuple[np.ndarray, int]:
    """q: (N, S, 4). Dropped quaternions held from the previous frame; returns (unit q, count)."""
    q = np.array(q, dtype=np.float64, copy=True)
    bad = np.linalg.norm(q, axis=-1) < QUAT_MIN_NORM
    n_bad = int(bad.sum())
    if n_bad:
        q[0][bad[0]] = (1.0, 0.0, 0.0, 0.0)
        for f in np.nonzero(bad[1:].any(axis=1))[0] + 1:
            q[f][bad[f]] = q[f - 1][bad[f]]
    return q / np.linalg.norm(q, axis=-1, keepdims=True), n_bad
