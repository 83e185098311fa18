"""The local height map (issue 22, retarget/scene_ground.py): VideoMimic's terrain observation, a level
11 x 11 grid at 0.1 m in the root's heading frame, surface height minus root height. On the sample
staircase, a step edge at a known distance in front of the root shows at the grid rows that lie past it."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.sample.scenes import STAIR_RISE_M, STAIR_X0_M, _ground, stair_boxes
from ingest.scene import scene_from_boxes
from retarget.scene_ground import HEIGHT_MAP_N, height_map_offsets, local_height_map


@pytest.fixture(scope="module")
def stairs():
    return scene_from_boxes(stair_boxes(), kind="stairs")


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([[np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]])


def test_step_edge_in_front_shows_in_the_front_row_only(stairs):
    root_z = 0.9
    x0 = STAIR_X0_M - 0.45  # the first riser 0.45 m ahead: between the grid rows at +0.4 and +0.5 m
    hm = local_height_map(stairs, np.array([[x0, 0.0, root_z]]), _yaw_quat(0.0))
    assert hm.shape == (1, HEIGHT_MAP_N, HEIGHT_MAP_N) and hm.dtype == np.float32
    rows = hm[0]
    assert np.allclose(rows[:-1], -root_z, atol=1e-5)  # behind, under and up to 0.4 m ahead: the floor
    assert np.allclose(rows[-1], STAIR_RISE_M - root_z, atol=1e-5)  # 0.5 m ahead: the first tread
    assert np.allclose(rows, rows[:, :1])  # the stairs span the grid's width: every column alike


def test_the_grid_turns_with_the_heading(stairs):
    """Facing down the stairs (yaw pi) from the second tread: the rows ahead step down, the rows behind
    up, exactly as the staircase's profile under each row's world x says."""
    root = np.array([[STAIR_X0_M + 0.45, 0.05, 1.2]])  # y within the treads (half width 0.6 m)
    hm = local_height_map(stairs, root, _yaw_quat(np.pi))[0]
    x_w = root[0, 0] - height_map_offsets()[:, 0, 0]  # row i lies at -x_i in world x
    expected = _ground("stairs", x_w) - root[0, 2]
    assert np.allclose(hm, expected[:, None], atol=1e-5)
    assert hm[-1, 0] < hm[HEIGHT_MAP_N // 2, 0] < hm[0, 0]  # ahead lower, behind higher


def test_flat_ground_and_sideways_heading():
    root = np.array([[0.3, -0.2, 0.75], [1.0, 2.0, 0.7]])
    quat = np.concatenate([_yaw_quat(0.3), _yaw_quat(np.pi / 2)])
    hm = local_height_map(None, root, quat)
    assert np.allclose(hm, -root[:, 2, None, None])
