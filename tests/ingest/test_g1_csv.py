"""Unitree LAFAN1 G1 CSV reader: layout as their loader reads it, ledger reasons, the store path."""

from __future__ import annotations

import io

import numpy as np
import pinocchio as pin
import pytest

from ingest.config import IngestConfig
from ingest.g1_csv import KEYPOINT_PREFIX, read_lafan1_csv
from ingest.pipeline import run_ingest
from ingest.sample.formats import g1_walk_in_place, lafan1_rows, write_lafan1_csv, write_lafan1_root
from robomirror.errors import SourceError
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.paths import DataLayout
from robomirror.shards import published_shards
from robomirror.tario import read_tar


def test_rows_read_as_unitrees_loader_reads_them(tmp_path):
    """rerun_visualize.py hands each row to pinocchio's framesForwardKinematics as the free-flyer q
    (xyz, quaternion xyzw, 29 joints in URDF order): our reading must put every body where that does."""
    from retarget.robot import G1

    root, quat, joints = g1_walk_in_place(20, 30.0, seed=3, yaw_rate_rad_s=2.0)  # a real yaw: xyzw vs wxyz matters
    rows = lafan1_rows(root, quat, joints)
    write_lafan1_csv(tmp_path / "turn1_subject1.csv", rows)
    traj = read_lafan1_csv(str(tmp_path / "turn1_subject1.csv"))
    assert traj.fps == 30.0 and traj.joint_pos.shape == (20, 29)

    robot = G1("g1_29dof")
    model = pin.buildModelFromMJCF(str(robot.xml))
    assert tuple(model.names[2:]) == G1_29DOF_JOINTS  # the URDF/MJCF order is the contract's
    data = model.createData()
    ours, _ = robot.bodies(robot.qpos(traj.root_pos_w, traj.root_quat_wxyz, traj.joint_pos))
    for i in (0, 7, 19):
        pin.framesForwardKinematics(model, data, rows[i])  # the row as-is, as their loader does
        for b, name in enumerate(robot.body_names):
            np.testing.assert_allclose(ours[i, b], data.oMf[model.getFrameId(name)].translation, atol=1e-6)


def test_columns_that_do_not_match_are_bad_columns(tmp_path):
    rows = lafan1_rows(*g1_walk_in_place(10, 30.0))
    cases = {
        "23dof.csv": "\n".join(",".join("0" for _ in range(7 + 23)) for _ in range(5)),
        "header.csv": "x,y,z,qx,qy,qz,qw," + ",".join(G1_29DOF_JOINTS) + "\n" + ",".join(map(str, rows[0])),
        "ragged.csv": ",".join(map(str, rows[0])) + "\n" + ",".join(map(str, rows[1][:-1])),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SourceError) as e:
            read_lafan1_csv(str(tmp_path / name))
        assert e.value.reason == "bad_columns", name
        assert "36 columns" in e.value.detail or "no header" in e.value.detail, name
        assert str(tmp_path / name) in str(e.value), "the error names the file"


def test_gated_pointer_is_named_not_parsed(tmp_path):
    p = tmp_path / "dance1_subject1.csv"
    p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    with pytest.raises(SourceError) as e:
        read_lafan1_csv(str(p))
    assert e.value.reason == "not_downloaded" and "licence" in e.value.detail and str(p) in str(e.value)


def test_ingest_publishes_g1_keypoints_with_the_exact_trajectory_and_ledgers_the_rest(tmp_path):
    src = tmp_path / "LAFAN1_Retargeting_Dataset"
    write_lafan1_root(src, n_takes=2)
    (src / "g1" / "broken_subject9.csv").write_text("1,2,3\n4,5,6\n")
    bad = lafan1_rows(*g1_walk_in_place(90, 30.0, seed=5))
    bad[40, 7 + G1_29DOF_JOINTS.index("left_knee_joint")] = 9.0  # 9 rad: no G1 knee bends that far
    write_lafan1_csv(src / "g1" / "kneebreak_subject9.csv", bad)
    layout = DataLayout(tmp_path / "data")
    s = run_ingest(layout, {"g1_csv": src}, IngestConfig(), executor="serial", progress=False)
    assert dict(s.failures_by_reason) == {"bad_columns": 1, "bad_shape": 1}, s.failures
    knee = next(f for f in s.failures if "kneebreak" in f.path)
    assert "left_knee_joint" in knee.detail and "limits" in knee.detail
    assert s.built == 2 and s.clips == 2  # 3 s and 5 s takes: one short clip and one full clip

    shards = published_shards(layout.manifest("ingest", "g1_csv"))
    members = dict(m for sh in shards for m in read_tar(sh))
    npz = [np.load(io.BytesIO(v), allow_pickle=False) for k, v in members.items() if k.endswith("human.npz")]
    z = max(npz, key=lambda z: len(z["joint_pos_w"]))
    assert all(str(n).startswith(KEYPOINT_PREFIX) for n in z["joint_names"])
    assert z["param_g1_joint_pos"].shape == (150, 29) and z["param_g1_root_quat_wxyz"].shape == (150, 4)
    assert not any(k.endswith("video.mp4") for k in members)  # motion-only
    # the exact file trajectory rides along: frame k of a 30 fps take at 30 Hz is row k
    rows = np.loadtxt(src / "g1" / "walk2_subject2.csv", delimiter=",")
    np.testing.assert_allclose(z["param_g1_joint_pos"], rows[:150, 7:], atol=1e-6)
