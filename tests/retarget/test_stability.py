"""CoM/CoP stability filter on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.robot import G1
from retarget.stability import StabilityConfig, assess, cop_xy, longest_run, pressure_weights, verdict

CFG = StabilityConfig()


def test_pressure_weights_follow_the_definition():
    h = np.array([-0.01, 0.0, 0.1])
    np.testing.assert_allclose(pressure_weights(h, CFG), [1 + 100 * 0.01, 1.0, np.exp(-1.0)])


def test_cop_is_the_weighted_mean_of_foot_points():
    pts = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.5]]])
    w = pressure_weights(pts[0, :, 2], CFG)
    np.testing.assert_allclose(cop_xy(pts, CFG)[0], (w[:, None] * pts[0, :, :2]).sum(0) / w.sum())


def test_run_length_rule_at_99_and_100_frames():
    dd = np.zeros(300)
    dd[50:149] = 0.5  # 99 unstable frames in a row
    assert verdict(dd, CFG).passed
    dd[50:150] = 0.5  # 100
    v = verdict(dd, CFG)
    assert not v.passed and v.reason == "unstable_run" and v.longest_unstable_run == 100
    assert longest_run(np.array([1, 1, 0, 1, 1, 1, 0], bool)) == 3


@pytest.mark.parametrize("where, reason", [(0, "first_frame_unstable"), (-1, "last_frame_unstable")])
def test_first_and_last_frame_rule(where, reason):
    dd = np.zeros(50)
    dd[where] = 0.2
    v = verdict(dd, CFG)
    assert not v.passed and v.reason == reason


def test_quiet_standing_passes_and_com_outside_support_fails():
    robot = G1()
    n = 60
    stand = np.tile(robot.zero_qpos, (n, 1))
    assert assess(robot, stand).passed
    # lean the whole robot forward about the toes: the CoM leaves the support polygon while the
    # front of the feet stays on the floor
    lean = stand.copy()
    angle = 0.35
    lean[:, 3:7] = [np.cos(angle / 2), 0.0, np.sin(angle / 2), 0.0]  # pitch forward [wxyz]
    low = robot.foot_bottom_z(lean[:1])[0].min()
    lean[:, 2] -= low
    v = assess(robot, lean)
    assert not v.passed and v.dd_mean_m > CFG.eps_m
