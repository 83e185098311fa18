"""train/env/contacts.py: the numpy self-collision test agrees with MuJoCo's own contacts."""

from __future__ import annotations

import mujoco
import numpy as np

from train.env.actuation import SIMS, ModelIndex, build_model
from train.env.contacts import SelfCollision, segment_distance


def test_segment_distance_on_known_cases():
    p = lambda *v: np.array(v, dtype=float)  # noqa: E731
    assert np.isclose(segment_distance(p(0, 0, 0), p(1, 0, 0), p(0, 1, 0), p(1, 0, 0)), 1.0)  # parallel
    assert np.isclose(segment_distance(p(0, 0, 0), p(2, 0, 0), p(1, -1, 1), p(0, 2, 0)), 1.0)  # crossing
    assert np.isclose(segment_distance(p(0, 0, 0), p(1, 0, 0), p(3, 0, 0), p(0, 0, 0)), 2.0)  # point, past the end
    assert np.isclose(segment_distance(p(0, 0, 0), p(0, 0, 0), p(0, 0, 2), p(0, 0, 0)), 2.0)  # two points


def test_self_collision_matches_mujocos_contacts_on_random_configurations():
    m = build_model(SIMS["train"])
    ix = ModelIndex.of(m)
    sc = SelfCollision.of(m, ix.floor_geom)
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    lo, hi = m.jnt_range[1:, 0], m.jnt_range[1:, 1]
    want, xpos, xmat = [], [], []
    for _ in range(300):
        d.qpos[:] = 0
        d.qpos[2], d.qpos[3] = 2.0, 1.0  # in the air: only robot-robot contacts
        d.qpos[7:] = rng.uniform(lo, hi)
        mujoco.mj_forward(m, d)
        g = d.contact.geom[:d.ncon]
        want.append(bool(np.any((g[:, 0] != ix.floor_geom) & (g[:, 1] != ix.floor_geom))))
        xpos.append(d.geom_xpos.copy())
        xmat.append(d.geom_xmat.copy())
    got = sc(np.stack(xpos), np.stack(xmat))
    assert 0.1 < np.mean(want) < 0.9  # both outcomes occur
    assert list(got) == want
