"""The foot orientation target stays continuous when the toe passes behind or above the ankle."""

from __future__ import annotations

import numpy as np

from retarget.ik import foot_rotations, heading_foot_rotations


def _foot_rolling_over(n: int = 361) -> dict[str, np.ndarray]:
    """A left lower leg turning over in the sagittal plane as in a forward roll or cartwheel: shin and
    foot rotate together about the ankle by 0 -> 360 degrees, so the toe passes below, behind and
    above the ankle."""
    a = np.linspace(0.0, 2 * np.pi, n)
    rot = np.zeros((n, 3, 3))  # rotation about the world y axis by a (toe-down first)
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = np.cos(a), np.sin(a), 1, -np.sin(a), np.cos(a)
    ankle = np.zeros((n, 3))
    toe = rot @ np.array([0.15, 0.0, 0.0])
    knee = rot @ np.array([0.0, 0.0, 0.4])
    return {"left_ankle": ankle, "left_toe": toe, "left_knee": knee}


def _step_angles_deg(r: np.ndarray) -> np.ndarray:
    rel = np.einsum("tji,tjk->tik", r[:-1], r[1:])
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))


def test_shin_frame_is_continuous_and_level_where_the_heading_frame_flips():
    kp = _foot_rolling_over()
    shin = foot_rotations(kp, "left", 0.0)
    heading = heading_foot_rotations(kp, "left", 0.0)
    assert np.allclose(np.einsum("tij,tkj->tik", shin, shin), np.eye(3), atol=1e-9)  # rotations
    assert np.allclose(np.linalg.det(shin), 1.0)
    assert _step_angles_deg(shin).max() < 3.0  # 1 degree per frame of motion, never a jump
    assert np.allclose(shin[:, :, 1], [0.0, 1.0, 0.0], atol=1e-6)  # the side axis stays left, level
    assert np.allclose(shin[:, :, 2], kp["left_knee"] / 0.4, atol=1e-6)  # the sole faces away from the knee
    assert np.allclose(shin[:, :, 0], (kp["left_toe"] / 0.15), atol=1e-6)  # x follows the foot
    assert _step_angles_deg(heading).max() > 90.0  # the control: the old target flips 180 degrees


def test_flat_pitch_is_removed_about_the_side_axis():
    kp = _foot_rolling_over(3)
    flat = foot_rotations(kp, "left", 0.3)
    assert np.allclose(flat[0][:, 0], [np.cos(0.3), 0.0, np.sin(0.3)], atol=1e-9)  # toe up by the flat pitch


def test_a_vertical_foot_keeps_the_previous_side_axis():
    kp = _foot_rolling_over(5)
    kp["left_knee"] = kp["left_ankle"] - 0.4 * kp["left_toe"] / 0.15  # the shin along the foot: no side axis
    r = foot_rotations(kp, "left", 0.0)
    assert np.isfinite(r).all() and np.allclose(np.linalg.det(r), 1.0)


def test_a_swing_heel_is_kept_as_high_as_the_humans_sole():
    """Toe up and low, not in contact: the G1's heel (further behind the ankle than the toe keypoint
    suggests) would touch the floor; the ankle target is lifted by the shortfall. In contact: untouched."""
    from retarget.clip import keep_sole_clearance
    from retarget.robot import G1

    n = 6
    pitch_up = np.radians(25.0)
    kp = {}
    for side, y in (("left", 0.1), ("right", -0.1)):
        ankle = np.tile([0.0, y, 0.045], (n, 1))
        toe = ankle + 0.13 * np.array([np.cos(pitch_up), 0.0, np.sin(pitch_up)])
        toe[:3] = ankle[:3] + [0.13, 0.0, -0.035]  # frames 0-2 flat on the floor
        kp[f"{side}_ankle"], kp[f"{side}_toe"] = ankle, toe
        kp[f"{side}_knee"] = ankle + [0.0, 0.0, 0.4]
    contact = np.zeros((n, 2), bool)
    contact[:3] = True
    out = keep_sole_clearance(G1(), kp, kp, contact)
    lift = out["left_ankle"][:, 2] - kp["left_ankle"][:, 2]
    assert np.all(lift[:3] == 0) and np.all(lift[3:] > 0.005)
    assert np.allclose(out["left_toe"][:, 2] - kp["left_toe"][:, 2], lift)


def test_swing_clearance_counts_the_grounding_shift_in_frames_without_any_contact():
    """Lying or airborne frames (no foot in contact) are grounded by the shift of the nearest stance
    frames (interpolated): a swing foot there must be lifted against that shift, not against none.
    Raising the later stance foot by 3 cm in the targets (so grounding will lower the whole body by
    3 cm) must raise the low swing foot by ~3 cm in the contact-free frames too."""
    from retarget.clip import keep_sole_clearance
    from retarget.robot import G1

    n = 8
    contact = np.zeros((n, 2), bool)
    contact[4:, 0] = True  # frames 0-3: no contact at all; then the left foot stands

    def feet(stance_raise_m: float) -> dict[str, np.ndarray]:
        kp = {}
        for side, y in (("left", 0.1), ("right", -0.1)):
            ankle = np.tile([0.0, y, 0.045], (n, 1))
            if side == "left":
                ankle[:4, 2] = 0.3  # high swing before it lands
                ankle[4:, 2] += stance_raise_m
            kp[f"{side}_ankle"], kp[f"{side}_toe"] = ankle, ankle + [0.13, 0.0, -0.035]
            kp[f"{side}_knee"] = ankle + [0.0, 0.0, 0.4]
        return kp

    human, robot = feet(0.0), G1()
    lift = {d: keep_sole_clearance(robot, human, feet(d), contact)["right_ankle"][:, 2] - feet(d)["right_ankle"][:, 2]
            for d in (0.0, 0.03)}
    more = lift[0.03] - lift[0.0]
    assert np.all(more[4:] > 0.02)  # frames with a stance foot: the shift is the stance foot's
    assert np.all(more[:4] > 0.02)  # frames without one: the interpolated shift, not zero
