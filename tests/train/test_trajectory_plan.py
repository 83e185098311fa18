"""The walking demonstrator (train.trajectory_plan): knots to per-frame corrections, their place in the library,
and the receding-horizon CEM: deterministic, never worse than its mean on a window, honest about its rollouts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robomirror import g1_contract as g1
from train.balance_prior import id_offsets
from train.env.actuation import SIMS, build_model
from train.env.synthetic import library
from train.trajectory_plan import PlanConfig, _window_cost, corrections, knot_table, n_knots, plan_clip, track

TINY = PlanConfig(knot_every=5, horizon_knots=2, population=6, generations=2, elite=2, init_std_rad=0.2,
                  noise_rollouts=0)


@pytest.fixture(scope="module")
def lib():
    return library(2, seconds=0.5)


def test_knot_table_is_linear_between_knots_in_action_units():
    knots = np.array([[0.0, 0.0], [0.5, -1.0], [1.0, 1.0]])  # 3 knots, 2 joints
    t = knot_table(knots, 11, 5)
    assert t.shape == (11, g1.N_ACT)
    rad = t[:, :2] * g1.ACTION_SCALE[:2]
    np.testing.assert_allclose(rad[[0, 5, 10]], knots)
    np.testing.assert_allclose(rad[2], 0.4 * knots[1])  # 2/5 of the way from knot 0 to knot 1
    np.testing.assert_allclose(rad[7], 0.6 * knots[1] + 0.4 * knots[2])
    assert not t[:, 2:].any()  # joints past the knots' are not corrected
    assert n_knots(11, 5) == 4 and n_knots(12, 5) == 4 and n_knots(10, 5) == 3


def test_corrections_land_on_their_clip_only(lib):
    k = n_knots(int(lib.lengths[1]), 5)
    knots = np.ones((k, 3))
    c = corrections(lib, {1: knots.tolist()}, 5)
    assert c.shape == (int(lib.lengths.sum()), g1.N_ACT)
    a, b = lib.starts[1], lib.starts[1] + lib.lengths[1]
    assert not c[:a].any() and not c[b:].any()
    np.testing.assert_allclose(c[a:b, :3] * g1.ACTION_SCALE[:3], 1.0)


def test_track_counts_steps_until_a_failure_and_nan_after_it(lib):
    n = 2
    base = lambda env, obs: obs["residual_base"]  # noqa: E731
    alive, kp, tilt = track(lib, 0, base, n, 5)
    assert (alive == 5).all() and np.isfinite(kp).all() and kp.shape == (n, 5)
    np.testing.assert_array_equal(kp[0], kp[1])  # identical worlds step identically

    def flail(env, obs):  # world 1 throws its joints to one side: it falls, world 0 holds
        a = obs["residual_base"].clone()
        a[1] += 30.0
        return a

    alive, kp, tilt = track(lib, 0, flail, n, int(lib.lengths[0]) - 1)
    assert alive[0] > alive[1]
    assert np.isnan(kp[1, alive[1]:]).all() and np.isfinite(kp[1, :alive[1]]).all()


def test_plan_is_deterministic_and_no_worse_than_no_correction_on_its_first_window(lib):
    model = build_model(SIMS["train"])
    offset = id_offsets(lib, model)
    gains = np.zeros(12)
    a = plan_clip(lib, 0, gains, offset, TINY)
    b = plan_clip(lib, 0, gains, offset, TINY)
    assert a["knots"] == b["knots"] and a["tracked_steps"] == b["tracked_steps"]
    knots = np.asarray(a["knots"])
    assert knots.shape == (n_knots(int(lib.lengths[0]), 5), TINY.joints)
    assert not knots[0].any()  # the start is the reference's
    assert np.abs(knots[1:]).max() > 0  # it did move
    # the first window's committed cost is at most the zero correction's (the CEM mean starts at 0, candidate 0)
    length = int(lib.lengths[0])
    t_end = min(length - 1, TINY.horizon_knots * TINY.knot_every)
    zero = _window_cost(lib, 0, gains, offset, np.zeros((1, length, g1.N_ACT)), 0, t_end, TINY)[0]
    assert a["history"][0]["window_cost"] <= zero + 1e-12
    assert 0 < a["tracked_steps"] <= a["steps"] == length - 1


def test_the_plan_rolls_out_with_the_prior_it_was_planned_on(lib):
    """The prior with the plan's corrections added to its offsets tracks as plan_clip reported."""
    from train.balance_prior import PriorPolicy
    from train.sim2sim import evaluate

    model = build_model(SIMS["train"])
    offset = id_offsets(lib, model)
    gains = np.zeros(12)
    p = plan_clip(lib, 1, gains, offset, TINY)
    res = evaluate(PriorPolicy(gains, offset + corrections(lib, {1: p["knots"]}, TINY.knot_every)), lib, "sim2sim")
    assert res[1].steps == p["tracked_steps"]
    assert res[1].mpkpe_m == pytest.approx(p["mpkpe_m"], rel=1e-9)


def test_noise_rollouts_change_what_the_plan_commits_and_are_reported(lib):
    model = build_model(SIMS["train"])
    offset = id_offsets(lib, model)
    robust = dataclasses.replace(TINY, noise_rollouts=2, noise_std=0.5)
    a = plan_clip(lib, 0, np.zeros(12), offset, robust)
    b = plan_clip(lib, 0, np.zeros(12), offset, TINY)
    assert len(a["noisy_tracked_steps"]) == 2 and b["noisy_tracked_steps"] == []
    assert a["knots"] != b["knots"]  # the same seed, another cost: the noisy rollouts count
    assert a == plan_clip(lib, 0, np.zeros(12), offset, robust)  # the noise sequences are fixed by the seed


def test_plan_config_refuses_what_cannot_run():
    with pytest.raises(ValueError, match="joints"):
        PlanConfig(joints=0)
    with pytest.raises(ValueError, match="noise"):
        PlanConfig(noise_std=-1.0)
    with pytest.raises(ValueError, match="elite"):
        PlanConfig(population=4, elite=3)


def test_policy_learn_keeps_the_plan_and_replans_only_when_its_key_changes(lib, tmp_path, monkeypatch):
    import json

    import train.policy_learn as pl

    calls = []

    def fake_plan(library, clip, gains, offset, cfg, progress=None):
        calls.append(clip)
        return {"knots": [[0.0] * cfg.joints], "tracked_steps": 3, "steps": 4, "mpkpe_m": 0.1, "history": []}

    monkeypatch.setattr(pl, "plan_clip", fake_plan)
    path = tmp_path / "trajectory_plan.json"
    offset = np.zeros((int(lib.lengths.sum()), g1.N_ACT))
    first = pl._plan_walks(lib, [1], np.zeros(12), offset, TINY, path, lambda *a: None)
    assert calls == [1] and json.loads(path.read_text()) == first
    assert first["clips"]["1"]["clip_id"] == lib.clip_ids[1]
    assert pl._plan_walks(lib, [1], np.zeros(12), offset, TINY, path, lambda *a: None) == first
    assert calls == [1]  # reused: same clips, gains and config
    pl._plan_walks(lib, [1], np.ones(12), offset, TINY, path, lambda *a: None)
    assert calls == [1, 1]  # other gains: planned again
