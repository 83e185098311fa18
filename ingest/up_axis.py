"""The up axis of a motion sequence: decided once per sequence, from evidence that holds for any motion.

A reader knows its subset's documented convention (Motion-X: y up); a sequence may still differ
(un-rotated or flipped conversions). The body's posture cannot be trusted frame by frame — in a
cartwheel, a roll, a crawl or a get-up the head is legitimately not above the ankles — so the axis is
checked against whole-sequence physical evidence, per candidate signed axis u:

- **floor**: gravity holds the body on a floor. The lowest body joints along u (feet, hands, knees,
  pelvis, head, ...) over the sequence lie on one plane: at least `floor_share_min` of the frames rest
  within `floor_band_m` of it, and both body sides reach it (a sideways axis finds one side's limbs only).
- **flight**: where the body is airborne, its centre of mass falls with g. A run of frames whose mean
  body joint accelerates at ~9.8 m/s^2 along -u names u, whatever the body's rotation (a backflip), when
  it is a real ballistic arc: at least `flight_min_run_s` long, one parabola through it, its fitted
  acceleration g along -u with nothing across u, rising then falling, from u's floor back onto it.
  A shorter or off arc abstains rather than votes: a jog's ~0.1 s flights, and a few frames of a short
  clip's forward surge (~7 m/s^2 along the travel axis) that once refused a y-up jog as "flight -z".
  Per-frame accelerations come from a parabola over `flight_smooth_s` (Savitzky-Golay), so a few mm
  of mocap jitter neither hides a real flight nor makes one.
- **upright**: over the frames where the body stands on its feet (the lowest joint a foot on the
  floor, the body extended), the head is above the ankles along u in some of them.

Gravity's evidence (floor, flight) must agree: the axes each accepts must intersect, else the sequence
is refused with a reason naming both. The upright evidence narrows what they accept but cannot refuse:
a body lying straight "stands" along a floor-parallel axis, and a crawl never stands. The decided axis
is the subset's when it is among the best supported, else the best supported. A body that turns over
between two frames is refused too (a sequence stitched from differently oriented parts). No frame is ever rotated on its own: one rotation for the
whole sequence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import savgol_filter

from ingest.failures import Reason
from ingest.skeletons import SMPL_BODY_22
from robomirror.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

AXES = ("+x", "-x", "+y", "-y", "+z", "-z")
G_M_S2 = 9.81
# the lowest body joint centre sits this far above the floor it rests on (SMPL-X foot joint, flat foot;
# the sample corpus puts its lowest foot joint at the same height): the floor is moved to z = 0 with it
JOINT_CLEARANCE_M = 0.04
FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")


@dataclass(frozen=True)
class UpAxisConfig:
    floor_band_m: float = 0.12  # a frame rests on the floor when its lowest joint is within this of it [m]
    floor_percentile: float = 5.0  # the floor is this percentile of the per-frame lowest joint height
    floor_share_min: float = 0.5  # the floor evidence accepts u when at least this share of frames rest on it
    side_share_min: float = 0.02  # ... and a left and a right joint each reach the floor in this share of frames
    flight_g_band: tuple[float, float] = (6.0, 14.0)  # |acceleration| of a free-falling body [m/s^2]
    flight_cos_min: float = 0.85  # a free-fall frame's acceleration within ~30 deg of -u
    # a flight is free fall for at least this long [s]: shorter arcs (a jog's ~0.1 s flight phases, a push-off,
    # a few frames of horizontal drift in a short clip) cannot be told from noise, so they abstain
    flight_min_run_s: float = 0.2
    flight_min_s: float = 0.2  # free fall the flight evidence needs to speak [s]
    flight_smooth_s: float = 0.15  # per-frame accelerations come from a parabola over this window [s]
    flight_fit_rms_m: float = 0.02  # a flight's mean body joint lies within this of one parabola [m]
    flight_acc_tol_m_s2: float = 2.5  # ... whose acceleration is within this of g along -u [m/s^2]
    static_speed_m_s: float = 0.3  # a joint resting on the floor moves slower than this along it [m/s]
    stand_extension: float = 0.8  # a standing frame's head-ankle distance, share of the ankle-to-head chain
    stand_min_frames: int = 5  # standing frames the upright evidence needs to speak
    upright_cos: float = 0.8  # the head is "above the ankles" along u within ~37 deg
    subset_floor_slack: float = 0.1  # the subset's axis wins when its floor share is this close to the best
    max_turn_rad_s: float = 50.0  # faster whole-body turns between two frames are a stitch, not motion

    def __post_init__(self) -> None:
        if not 0 < self.floor_share_min <= 1:
            raise ConfigError(f"floor_share_min must be in (0, 1], got {self.floor_share_min}")
        if self.floor_band_m <= 0 or self.max_turn_rad_s <= 0:
            raise ConfigError("floor_band_m and max_turn_rad_s must be > 0")
        if self.flight_min_run_s <= 0 or self.flight_fit_rms_m <= 0 or self.flight_acc_tol_m_s2 <= 0:
            raise ConfigError(f"flight_min_run_s, flight_fit_rms_m and flight_acc_tol_m_s2 must be > 0, got "
                              f"{self.flight_min_run_s}, {self.flight_fit_rms_m}, {self.flight_acc_tol_m_s2}")


@dataclass(frozen=True)
class UpAxisDecision:
    axis: str  # signed source axis that becomes +z ("+y", "-z", ...)
    floor_m: float  # height of the floor along `axis` in the source frame [m] (joint plane - clearance)
    subset_axis: str | None  # the subset's documented axis, None where it states none
    evidence: dict = field(default_factory=dict)  # per evidence: the axes it accepts, and its numbers

    @property
    def differs_from_subset(self) -> bool:
        return self.subset_axis is not None and self.axis != self.subset_axis

    def notes(self) -> dict:
        return {"source_up_axis": self.axis, "subset_up_axis": self.subset_axis, "up_axis_evidence": self.evidence}


def axis_vector(axis: str) -> np.ndarray:
    if axis not in AXES:
        raise ConfigError(f"up axis must be one of {AXES}, got {axis!r}")
    v = np.zeros(3)
    v["xyz".index(axis[1])] = 1.0 if axis[0] == "+" else -1.0
    return v


def _torso_frames(j: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 3, 3) body-fixed frame of the torso (hips' line, pelvis -> neck)."""
    x = j["left_hip"] - j["right_hip"]
    y = j["neck"] - j["pelvis"]
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    z = np.cross(x, y)
    z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-9)
    return np.stack([x, np.cross(z, x), z], axis=-1)


def turn_check(j: dict[str, np.ndarray], fps: float, cfg: UpAxisConfig, path: str) -> float:
    """Largest torso turn rate [rad/s]; a turn no body makes in one frame is refused (a stitch)."""
    if len(j["pelvis"]) < 2:
        return 0.0
    r = _torso_frames(j)
    rel = np.einsum("tji,tjk->tik", r[:-1], r[1:])
    angle = np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1))
    k = int(np.argmax(angle))
    if angle[k] * fps > cfg.max_turn_rad_s:
        raise SourceError(Reason.INCONSISTENT_ORIENTATION, path,
                          f"the body turns by {np.degrees(angle[k]):.0f} deg between frames {k} and {k + 1} "
                          f"({angle[k] * fps:.0f} rad/s; no body turns faster than {cfg.max_turn_rad_s:.0f}): the "
                          f"sequence is stitched from differently oriented parts (Motion-X's EgoBody conversion "
                          f"flips some); refused rather than rotated frame by frame")
    return float(angle.max() * fps)


def floor_evidence(h: np.ndarray, speed: np.ndarray, sides: tuple[np.ndarray, np.ndarray], cfg: UpAxisConfig) -> dict:
    """The floor plane along u, the share of frames resting on it, the sides' shares, and the share of
    frames where a joint on it is at rest (a floor holds its contacts still; a "ceiling" along a crawling
    body's back slides along with it).

    h: (T, J) joint heights along u [m]; speed: (T, J) joint speeds across u [m/s]."""
    low = h.min(1)
    floor = float(np.percentile(low, cfg.floor_percentile))
    near = h < floor + cfg.floor_band_m
    left, right = (float(near[:, s].any(1).mean()) for s in sides)
    share = float((low < floor + cfg.floor_band_m).mean())
    static = float((near & (speed < cfg.static_speed_m_s)).any(1).mean())
    return {"plane_m": floor, "share": round(share, 3), "sides": round(min(left, right), 3), "static": round(static, 3),
            "accepts": share >= cfg.floor_share_min and min(left, right) >= cfg.side_share_min}


def _fit_arc(com: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Least-squares parabola through (n, 3) positions [m] sampled at fps: its acceleration [m/s^2], its
    velocities at the first and last sample [m/s], and the RMS distance of the samples from it [m]."""
    s = (np.arange(len(com)) - 0.5 * (len(com) - 1)) / fps
    basis = np.stack([np.ones_like(s), s, 0.5 * s * s], axis=1)
    coef = np.linalg.lstsq(basis, com, rcond=None)[0]
    rms = float(np.sqrt(np.mean(np.sum((com - basis @ coef) ** 2, axis=-1))))
    return coef[2], coef[1] + coef[2] * s[0], coef[1] + coef[2] * s[-1], rms


def flight_frames(com: np.ndarray, fps: float, on_floor: dict[str, np.ndarray], cfg: UpAxisConfig,
                  arcs: list[dict] | None = None) -> dict[str, int]:
    """Signed axis -> frames of flights along it. A flight is a run of free-fall frames (acceleration ~g
    along -axis; a single frame outside the band inside a run is noise, not a landing) that is a real
    ballistic arc:

    - at least `flight_min_run_s` long: a jog's flight phases (~0.1 s) and a push-off are too short to
      tell a parabola from a few frames of horizontal drift, so they abstain rather than vote;
    - one parabola fits the run within `flight_fit_rms_m`, and its acceleration is g along -axis with
      nothing across it (`flight_acc_tol_m_s2`: a body in the air keeps its horizontal velocity);
    - it rises, then falls (its apex is inside the run), and leaves the axis's floor and lands back on it
      (a body rising fast from a crouch accelerates upwards at ~g too, but stands on its floor throughout).

    com: (T, 3) mean body joint [m]; on_floor: axis -> (T,) bool, the lowest joint on that axis's floor.
    arcs: if given, each candidate run is appended to it with its numbers and the test it failed (None
    for a flight)."""
    out = {a: 0 for a in AXES}
    min_run = max(3, int(np.ceil(cfg.flight_min_run_s * fps)))
    if len(com) < min_run + 2:
        return out
    # each frame's acceleration from a parabola through its neighbours (Savitzky-Golay): a plain second
    # difference amplifies a millimetre of jitter to metres per second squared at 30 fps
    half = max(1, int(round(cfg.flight_smooth_s * fps / 2)))
    window = min(2 * half + 1, len(com) - (1 - len(com) % 2))
    acc = savgol_filter(com, window, 2, deriv=2, delta=1.0 / fps, axis=0, mode="interp")[1:-1]  # acc[i]: frame i + 1's
    mag = np.linalg.norm(acc, axis=-1)
    lo, hi = cfg.flight_g_band
    for a in AXES:
        u = axis_vector(a)
        fall = np.concatenate([[False], (mag > lo) & (mag < hi) & (acc @ -u > cfg.flight_cos_min * mag), [False]])
        fall[1:-1] |= fall[:-2] & fall[2:]  # a one-frame gap inside a run is noise
        edges = np.flatnonzero(np.diff(fall.astype(np.int8)))
        for start, stop in zip(edges[::2] + 1, edges[1::2] + 1, strict=True):  # frames [start, stop)
            if stop - start < 2:
                continue  # a lone frame is no run at all: not even recorded
            a_fit, v0, v1, rms = _fit_arc(com[start - 1:stop + 1], fps)  # the positions the run's accelerations use
            airborne = ~on_floor[a][start:stop]
            if stop - start < min_run:
                failed = "short"
            elif rms > cfg.flight_fit_rms_m:
                failed = "not_a_parabola"
            elif np.linalg.norm(a_fit + G_M_S2 * u) > cfg.flight_acc_tol_m_s2:
                failed = "not_g_along_axis"
            elif not v0 @ u > 0 > v1 @ u:
                failed = "no_apex"
            elif not (airborne.mean() > 0.5 and on_floor[a][max(start - min_run, 0):start].any()
                      and on_floor[a][stop:stop + min_run].any()):
                failed = "not_floor_to_floor"
            else:
                failed = None
                out[a] += int(stop - start)
            if arcs is not None:
                arcs.append({"axis": a, "frames": [int(start), int(stop)], "acc_m_s2": np.round(a_fit, 2).tolist(),
                             "fit_rms_m": round(rms, 4), "rejected": failed})
    return out


def upright_evidence(h: np.ndarray, u: np.ndarray, j: dict[str, np.ndarray], names: tuple[str, ...],
                     plane: float, chain: float, cfg: UpAxisConfig) -> dict:
    """Over the frames where the body stands along u (lowest joint a foot on the floor, the body extended
    to most of its ankle-to-head chain), those where the head is above the ankles along u. It accepts u
    with `stand_min_frames` of them: lying straight looks like standing along a floor-parallel axis, so
    this evidence can only exclude axes along which the body never stands upright."""
    feet = [names.index(n) for n in FEET]
    lowest = h.argmin(1)
    standing = np.isin(lowest, feet) & (h.min(1) < plane + cfg.floor_band_m)
    mid = 0.5 * (j["left_ankle"] + j["right_ankle"])
    v = j["head"] - mid
    ext = np.linalg.norm(v, axis=-1)
    standing &= ext >= cfg.stand_extension * chain
    n = int(standing.sum())
    if n < cfg.stand_min_frames:
        return {"frames": n, "share": None, "accepts": None}
    up = (v[standing] @ u) >= cfg.upright_cos * ext[standing]
    share = float(up.mean())
    return {"frames": n, "share": round(share, 3),
            "accepts": int(up.sum()) >= cfg.stand_min_frames}


def decide_up_axis(joints: np.ndarray, names: tuple[str, ...], fps: float, subset_axis: str | None = None,
                   path: str = "", cfg: UpAxisConfig | None = None) -> UpAxisDecision:
    """One up axis for the whole sequence.

    Args:
        joints: (T, J, 3) joint positions [m] in the source frame; names: their SMPL/SMPL-X names
            (the first 22 body joints are used); fps: their rate [Hz]; subset_axis: the documented
            convention ("+y") or None.
    Raises:
        SourceError: INCONSISTENT_ORIENTATION for a body that turns over between two frames;
            UP_AXIS_FLOOR_VS_FLIGHT when the floor and the flights accept no common axis.
    """
    cfg = cfg or UpAxisConfig()
    if subset_axis is not None:
        axis_vector(subset_axis)
    body = [n for n in SMPL_BODY_22 if n in names]
    j = {n: np.asarray(joints[:, names.index(n)], dtype=np.float64) for n in body}
    p = np.stack([j[n] for n in body], axis=1)
    sides = (np.array([n.startswith("left_") for n in body]), np.array([n.startswith("right_") for n in body]))
    turn = turn_check(j, fps, cfg, path)
    # bone lengths do not depend on the pose: the straight ankle-to-head chain is the standing extension
    bones = (("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("left_hip", "pelvis"), ("pelvis", "spine1"),
             ("spine1", "spine2"), ("spine2", "spine3"), ("spine3", "neck"), ("neck", "head"))
    chain = float(sum(np.median(np.linalg.norm(j[a] - j[b], axis=-1)) for a, b in bones))
    vel = np.gradient(p, axis=0) * fps if len(p) > 1 else np.zeros_like(p)
    per_axis = {}
    for a in AXES:
        u = axis_vector(a)
        h = p @ u
        across = vel - (vel @ u)[..., None] * u
        fl = floor_evidence(h, np.linalg.norm(across, axis=-1), sides, cfg)
        per_axis[a] = {"floor": fl, "upright": upright_evidence(h, u, j, tuple(body), fl["plane_m"], chain, cfg),
                       "on_floor": (p @ axis_vector(a)).min(1) < fl["plane_m"] + cfg.floor_band_m}
    arcs: list[dict] = []
    flights = flight_frames(p.mean(1), fps, {a: per_axis[a].pop("on_floor") for a in AXES}, cfg, arcs)
    floor_ok = {a for a in AXES if per_axis[a]["floor"]["accepts"]}
    upright_ok = {a for a in AXES if per_axis[a]["upright"]["accepts"]}
    best_flight = max(AXES, key=lambda a: flights[a])
    flight_ok = {best_flight} if flights[best_flight] >= cfg.flight_min_s * fps else set()
    # gravity's evidence (floor, flight) must agree; the upright evidence only narrows what they accept:
    # a body lying straight "stands" along a floor-parallel axis, and a crawl never stands at all
    present = {"floor": floor_ok, "flight": flight_ok, "upright": upright_ok}
    evidence = {k: sorted(v) for k, v in present.items()}
    evidence.update(max_turn_rad_s=round(turn, 1),
                    floor_share={a: per_axis[a]["floor"]["share"] for a in AXES},
                    floor_static={a: per_axis[a]["floor"]["static"] for a in AXES},
                    flight_frames={a: n for a, n in flights.items() if n},
                    flight_arcs=[c for c in arcs if c["rejected"] is None],
                    flight_abstained={r: sum(c["rejected"] == r for c in arcs)
                                      for r in sorted({c["rejected"] for c in arcs} - {None})},
                    flight_longest_abstained=max((c for c in arcs if c["rejected"]), default=None,
                                                 key=lambda c: c["frames"][1] - c["frames"][0]))
    if floor_ok and flight_ok and not floor_ok & flight_ok:
        raise SourceError(Reason.UP_AXIS_FLOOR_VS_FLIGHT, path,
                          f"the floor evidence accepts up axes {sorted(floor_ok)} and the flight evidence "
                          f"{sorted(flight_ok)}: no axis satisfies both (floor shares {evidence['floor_share']}, "
                          f"flight frames {evidence['flight_frames']}); refused rather than guessed")
    candidates = (floor_ok or set(AXES)) & (flight_ok or set(AXES))
    if candidates & upright_ok:
        candidates &= upright_ok
    if not floor_ok and not flight_ok and not upright_ok:
        axis = subset_axis or "+y"
        evidence["unverified"] = "no floor, flight or standing frames to check the axis against"
    else:
        # among the axes whose floor holds (nearly) as many frames as the best: the subset's, else the one
        # whose floor holds its contacts still, then the most upright standing frames, then the most flight
        best = max(per_axis[a]["floor"]["share"] for a in candidates)
        near = sorted(a for a in candidates if per_axis[a]["floor"]["share"] >= best - cfg.subset_floor_slack)
        axis = subset_axis if subset_axis in near else max(near, key=lambda a: (
            per_axis[a]["floor"]["static"], per_axis[a]["upright"]["share"] or 0.0, flights[a],
            per_axis[a]["floor"]["share"]))
    floor_m = per_axis[axis]["floor"]["plane_m"] - JOINT_CLEARANCE_M
    decision = UpAxisDecision(axis, floor_m, subset_axis, evidence)
    if decision.differs_from_subset:
        log.warning("%s: up axis %s differs from its subset's %s (evidence: %s)", path, axis, subset_axis,
                    {k: evidence[k] for k in ("floor", "flight", "upright")})
    return decision
