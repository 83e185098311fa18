"""The up axis is decided once per sequence from physical evidence (ingest/up_axis.py), on dynamic motions
built with the body model and written as Motion-X files, each in y-up and z-up."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ingest.body_model import BuiltinSkeleton
from ingest.failures import Reason
from ingest.motionx import discover_motionx, read_motionx, split_columns, zup_rotation
from ingest.up_axis import JOINT_CLEARANCE_M, decide_up_axis
from robomirror.errors import SourceError
from tests.ingest.dynamic_motions import ARMS_DOWN, MOTIONS, build, write_motionx

BODY = BuiltinSkeleton("smplx")
N = {n: i for i, n in enumerate(BODY.joint_names)}


@pytest.mark.parametrize("up", ["y", "z"])
@pytest.mark.parametrize("make", MOTIONS, ids=lambda m: m.__name__)
def test_dynamic_motion_ingests_upright_on_the_floor(tmp_path, make, up, caplog):
    built = make()
    write_motionx(tmp_path, "kungfu", built, up)  # kungfu documents y-up: a z-up file must be detected
    (ref,) = discover_motionx(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ingest.up_axis"):
        seq = read_motionx(ref, BODY)
    assert seq.notes["source_up_axis"] == f"+{up}"
    if built.name == "backflip":  # its flight is evidence of its own
        assert seq.notes["up_axis_evidence"]["flight"] == [f"+{up}"]
    assert ("differs from its subset" in caplog.text) == (up == "z") == ("up_axis_warning" in seq.notes)
    j = seq.joint_pos_w.astype(np.float64)
    z = j[..., 2]
    # the floor at z = 0: the lowest body joint rests JOINT_CLEARANCE_M above it, never below
    low = z[:, :22].min(1)
    assert np.percentile(low, 5) == pytest.approx(JOINT_CLEARANCE_M, abs=0.01)
    assert low.min() > JOINT_CLEARANCE_M - 0.02
    stand = built.standing
    if stand.any():  # upright where it stands, both feet on the floor
        assert np.all(z[stand, N["head"]] > z[stand, N["pelvis"]] + 0.4)
        assert np.all(z[stand, N["pelvis"]] > z[stand][:, [N["left_ankle"], N["right_ankle"]]].max(1) + 0.5)
        feet = z[stand][:, [N["left_ankle"], N["left_foot"], N["right_ankle"], N["right_foot"]]]
        assert np.all(np.minimum(feet[:, :2].min(1), feet[:, 2:].min(1)) < JOINT_CLEARANCE_M + 0.03)
    # one rotation for the whole sequence: every frame is the source frame under the same rotation + shift
    src = split_columns(np.load(dict(ref.files)["motion"]))
    j_src = BODY.joints(src["root_orient"], src["pose_body"], src["trans"], src["betas"])
    moved = j_src @ zup_rotation(seq.notes["source_up_axis"]).T
    np.testing.assert_allclose(j - moved, np.broadcast_to((j - moved)[:1, :1], j.shape), atol=1e-4)


def test_a_body_turned_over_between_two_frames_is_refused_naming_the_turn():
    built = MOTIONS[1]()  # backflip
    p = built.params
    j = BODY.joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"])
    j[40:] = j[40:] * [1.0, -1.0, -1.0]  # the second part upside down (an EgoBody-style stitch)
    with pytest.raises(SourceError) as e:
        decide_up_axis(j, BODY.joint_names, 30.0, "+y", "stitched")
    assert e.value.reason == Reason.INCONSISTENT_ORIENTATION.value and "between frames 39 and 40" in str(e.value)


def test_floor_and_flight_that_disagree_are_refused_naming_both():
    """A body on a y-floor throughout that also flies a ballistic arc sideways, leaving and landing back at
    the same x: no physical sequence does both."""
    p = build("stand", [(0.0, ARMS_DOWN), (3.0, {})], standing=[(0.0, 3.0)]).params  # standing still
    j = BODY.joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"])
    s = np.clip(np.arange(len(j)) / 30.0 - 1.3, 0.0, 0.6)
    j[..., 0] += (0.5 * 9.81 * 0.6 * s - 0.5 * 9.81 * s * s)[:, None]  # out along +x and back, under g along -x
    with pytest.raises(SourceError) as e:
        decide_up_axis(j, BODY.joint_names, 30.0, "+y", "odd")
    assert e.value.reason == Reason.UP_AXIS_FLOOR_VS_FLIGHT.value
    assert "the floor evidence accepts up axes ['+y'" in str(e.value) and "flight evidence ['+x']" in str(e.value)
