import numpy as np
from scipy.spatial.transform import Rotation

from robomirror.rotations import (
    R_ZUP_FROM_YUP,
    axis_angle_to_matrix,
    axis_angle_to_quat_wxyz,
    matrix_to_axis_angle,
    matrix_to_quat_wxyz,
    quat_slerp,
    quat_wxyz_to_matrix,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
)


def _same_rotation(q1, q2, atol=1e-9):
    """Quaternions equal up to the double cover."""
    return np.all(np.minimum(np.abs(q1 - q2).max(-1), np.abs(q1 + q2).max(-1)) < atol)


def test_against_scipy_on_random_rotations():
    aa = np.random.default_rng(0).normal(size=(500, 3)) * 1.7
    ref = Rotation.from_rotvec(aa)
    np.testing.assert_allclose(axis_angle_to_matrix(aa), ref.as_matrix(), atol=1e-12)
    assert _same_rotation(matrix_to_quat_wxyz(ref.as_matrix()), ref.as_quat(scalar_first=True))
    np.testing.assert_allclose(axis_angle_to_matrix(matrix_to_axis_angle(ref.as_matrix())), ref.as_matrix(), atol=1e-9)
    np.testing.assert_allclose(quat_wxyz_to_matrix(axis_angle_to_quat_wxyz(aa)), ref.as_matrix(), atol=1e-12)


def test_xyzw_round_trip_and_yup_to_zup():
    q = np.random.default_rng(1).normal(size=(10, 4))
    np.testing.assert_array_equal(quat_xyzw_to_wxyz(quat_wxyz_to_xyzw(q)), q)
    np.testing.assert_allclose(R_ZUP_FROM_YUP @ [0, 1, 0], [0, 0, 1])
    assert np.isclose(np.linalg.det(R_ZUP_FROM_YUP), 1.0)


def test_slerp_endpoints_and_midpoint():
    q0 = axis_angle_to_quat_wxyz(np.array([0.0, 0.0, 0.0]))
    q1 = axis_angle_to_quat_wxyz(np.array([0.0, 0.0, 1.0]))
    mid = quat_slerp(q0, -q1, np.array(0.5))  # the far cover must still take the short way
    assert _same_rotation(mid, axis_angle_to_quat_wxyz(np.array([0.0, 0.0, 0.5])))
    assert _same_rotation(quat_slerp(q0, q1, np.array(1.0)), q1)
