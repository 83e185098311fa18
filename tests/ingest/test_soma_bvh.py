"""SOMA BVH (BONES-SEED's human motion): the BVH parser's conventions, the SOMA skeleton map, ledger
reasons for malformed files, and a known G1 pose coming back through ingest and retargeting."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ingest.bones_seed import SOMA_LAYOUT, discover_bones_seed, read_soma_bvh, soma_joints
from ingest.bvh import forward_kinematics, parse_bvh
from ingest.config import IngestConfig
from ingest.pipeline import run_ingest
from ingest.sample.formats import BONES_SEED_SAMPLE, g1_walk_in_place, write_bones_seed_root
from ingest.sample.soma import soma_bvh_text, soma_frames_from_g1, write_soma_bvh
from robomirror.errors import SourceError
from robomirror.paths import DataLayout
from robomirror.rotations import R_ZUP_FROM_YUP

GATED = "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"
TWO_JOINTS = """HIERARCHY
ROOT A {
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT B
  {
    OFFSET 10 0 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.008333
1 2 3 30 -20 45 10 60 -15
0 0 0 0 0 0 0 0 0
"""


@pytest.fixture(scope="module")
def g1_motion():
    return g1_walk_in_place(48, 120.0, seed=5, yaw_rate_rad_s=1.0)


def test_rotation_channels_compose_intrinsically_in_listed_order_and_positions_replace_the_offset():
    m = parse_bvh(TWO_JOINTS, "two.bvh")
    assert m.names == ("A", "B") and m.parents == (-1, 0) and m.frame_time_s == 0.008333
    pos, rot = forward_kinematics(m)
    r_a = Rotation.from_euler("ZXY", [30, -20, 45], degrees=True)  # scipy upper case: intrinsic
    r_b = Rotation.from_euler("YXZ", [10, 60, -15], degrees=True)
    np.testing.assert_allclose(pos[0, 0], [1, 2, 3], atol=1e-12)  # Xposition.. replace A's offset
    np.testing.assert_allclose(pos[0, 1], [1, 2, 3] + r_a.apply([10, 0, 0]), atol=1e-9)
    np.testing.assert_allclose(rot[0, 1], (r_a * r_b).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(pos[1, 1], [10, 0, 0], atol=1e-12)  # End Site: not a joint


def test_soma_bvh_reads_back_the_g1_keypoints_it_was_written_from(tmp_path, g1_motion):
    """Root joint, y-up, centimetres, CRLF, mixed channel orders, non-identity rest rotations: FK gives
    the G1's keypoints (MuJoCo) to numerical precision, named by the SMPL map, at 120 fps."""
    from retarget.robot import G1

    path = tmp_path / "walk.bvh"
    write_soma_bvh(path, *g1_motion)
    raw = path.read_bytes()
    assert raw.count(b"\r\n") > 50 and b"ROOT Root" in raw and b"End Site" in raw
    assert b"CHANNELS 3 Yrotation Zrotation Xrotation" in raw and b"Frame Time: 0.008333" in raw
    names, joints, fps, notes = soma_joints(str(path))
    assert fps == 120.0 and notes["bvh_frame_time_s"] == 0.008333  # 120.0048 read as the 120 it stands for
    robot = G1("g1_29dof")
    kp_names = ("pelvis", "left_knee", "right_ankle", "left_toe", "head", "right_shoulder", "left_wrist")
    smpl = ("pelvis", "left_knee", "right_ankle", "left_foot", "head", "right_shoulder", "left_wrist")
    kp = robot.keypoints(robot.qpos(*g1_motion), kp_names)
    zup = joints @ R_ZUP_FROM_YUP.T
    np.testing.assert_allclose(zup[:, [names.index(n) for n in smpl]], kp, atol=1e-6)


def _variant(text: str, tmp_path, name: str) -> str:
    p = tmp_path / f"{name}.bvh"
    p.write_text(text)
    return str(p)


def test_malformed_bvh_is_refused_with_a_reason_naming_what_was_found(tmp_path, g1_motion):
    good = soma_bvh_text(*soma_frames_from_g1(*(a[:6] for a in g1_motion)))
    head, motion = good.split("MOTION")
    rows = motion.strip().split("\r\n")
    metres = soma_bvh_text(*(a / 100.0 if i == 0 else a for i, a in enumerate(soma_frames_from_g1(*g1_motion))))
    lafan = TWO_JOINTS.replace("ROOT A", "ROOT Hips").replace("JOINT B", "JOINT LeftUpLeg")
    cases = {
        "truncated": (head + "MOTION\r\n" + "\r\n".join(rows[:-1])[:-40], "header_mismatch", "Frames: 6"),
        "no_motion": (head, "bad_shape", "no MOTION section"),
        "bad_channel": (head.replace("Yrotation Zrotation Xrotation", "Yrotation Zrotation Wrotation", 1)
                        + "MOTION" + motion, "bad_columns", "Wrotation"),
        "end_site_channels": (TWO_JOINTS.replace("OFFSET 0 5 0", "OFFSET 0 5 0\n CHANNELS 1 Xrotation"),
                              "bad_shape", "End Site"),
        "not_numbers": (head + "MOTION" + motion.replace(rows[3], rows[3].replace(" ", " 1,5 ", 1)), "bad_csv",
                        "not a number"),
        "other_skeleton": (lafan, "bad_columns", "Missing joints"),
        "metres": (metres, "bad_shape", "centimetres"),
        "gated": (GATED, "not_downloaded", "licence-gated"),
    }
    for name, (text, reason, words) in cases.items():
        with pytest.raises(SourceError) as e:
            soma_joints(_variant(text, tmp_path, name))
        assert e.value.reason == reason and words in e.value.detail, (name, e.value)
        assert name in e.value.path


def test_bones_seed_root_discovers_bvh_beside_the_csv_sharing_descriptions_and_ledgers_bad_files(tmp_path):
    src = tmp_path / "bones_seed"
    write_bones_seed_root(src)
    bad = src / "soma_uniform" / "bvh" / "210531" / "broken__A010.bvh"
    bad.write_text("HIERARCHY\nROOT Root {\n")
    refs = discover_bones_seed(src)
    bvh = [r for r in refs if r.layout == SOMA_LAYOUT]
    assert len(bvh) == 3 and all(r.subset.startswith("soma_uniform_") for r in bvh)
    assert len({r.key for r in refs}) == len(refs)  # a BVH and the CSV of one motion are two sequences
    layout = DataLayout(tmp_path / "data")
    s = run_ingest(layout, {"bones_seed": src}, IngestConfig(), executor="serial", progress=False)
    assert dict(s.failures_by_reason) == {"bad_shape": 1} and "broken" in s.failures[0].path
    assert "no MOTION section" in s.failures[0].detail
    assert s.built == 4 and s.clips == 4  # two G1 CSVs, two BVHs of the same motions

    ref = next(r for r in bvh if r.sequence == BONES_SEED_SAMPLE[0][1])
    seq = read_soma_bvh(ref, IngestConfig())
    assert {t.text for t in seq.texts if t.kind.startswith("natural_desc")} == set(BONES_SEED_SAMPLE[0][3])
    assert seq.notes["source_up_axis"] == "+y" and seq.view == "motion_only" and seq.fps == 30.0
    feet = [seq.joint_names.index(n) for n in ("left_foot", "right_foot", "left_ankle", "right_ankle")]
    assert abs(float(seq.joint_pos_w[:, feet, 2].min())) < 0.06  # z-up, the floor moved to z = 0


def test_a_known_g1_pose_written_as_soma_bvh_retargets_back_to_that_pose(tmp_path):
    """The BVH's skeleton is the G1's: ingest + retarget must give back its joint angles, roughly."""
    from retarget.clip import retarget_clip
    from retarget.config import RetargetConfig
    from retarget.robot import G1
    from robomirror.g1_contract import G1_29DOF_JOINTS

    root, quat, joints = g1_walk_in_place(120, 120.0, seed=9, yaw_rate_rad_s=0.5)
    src = tmp_path / "bones_seed"
    write_soma_bvh(src / "soma_uniform" / "bvh" / "210601" / "pose__A001.bvh", root, quat, joints)
    (ref,) = discover_bones_seed(src)
    seq = read_soma_bvh(ref, IngestConfig())
    res = retarget_clip(G1("g1_29dof"), seq.joint_names, seq.joint_pos_w.astype(np.float64), seq.fps, RetargetConfig())
    want = joints[np.round(seq.source_frame_index).astype(int)]
    got = res.motion.joint_pos
    legs = [G1_29DOF_JOINTS.index(f"{s}_{j}_joint") for s in ("left", "right") for j in ("hip_pitch", "knee")]
    assert np.median(np.abs(got[:, legs] - want[:, legs])) < 0.1, np.abs(got[:, legs] - want[:, legs]).max(0)
    knee = G1_29DOF_JOINTS.index("left_knee_joint")
    assert np.corrcoef(got[:, knee], want[:, knee])[0, 1] > 0.9  # the knee bends when the source's does
