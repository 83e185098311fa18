"""The PHC-style betas fit on a synthetic SMPL-X file whose shape space can stretch the legs."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.body_model import BuiltinSkeleton, load_body_model
from ingest.skeletons import SMPLX_JOINTS
from retarget.betas_fit import fit_betas, repose
from retarget.clip import retarget_clip, robot_rest_keypoints
from retarget.config import RetargetConfig
from retarget.correspondence import SMPL_FAMILY
from retarget.robot import G1
from tests.ingest.test_body_model import N_VERTS, _rest_joints, write_synthetic_smplx

LEGS = [SMPLX_JOINTS.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A shape space with separate directions: 0 scales the body, 1 lengthens the legs, 2 the
    forearms and hands, 3 widens the shoulders, 4 raises neck and head."""
    d = tmp_path_factory.mktemp("shaped") / "models"
    (d / "smplx").mkdir(parents=True)
    rest = _rest_joints(BuiltinSkeleton("smplx"))
    sd = np.zeros((N_VERTS, 3, 400))
    sd[: len(rest), :, 0] = 0.1 * rest
    for j in LEGS:
        sd[j, 1, 1] = -0.03 if "knee" in SMPLX_JOINTS[j] else -0.06
    for j, name in enumerate(SMPLX_JOINTS):
        side = 1.0 if name.startswith("left") else -1.0
        if name.endswith(("_elbow",)):
            sd[j, 0, 2] = 0.0
        elif any(k in name for k in ("wrist", "index", "middle", "pinky", "ring", "thumb")):
            sd[j, 0, 2] = 0.05 * side
        if any(k in name for k in ("collar", "shoulder", "elbow", "wrist", "index", "middle", "pinky", "ring", "thumb")):
            sd[j, 0, 3] = 0.02 * side
        if name in ("neck", "head", "jaw", "left_eye_smplhf", "right_eye_smplhf"):
            sd[j, 1, 4] = 0.03
    write_synthetic_smplx(d / "smplx" / "SMPLX_NEUTRAL.npz", sd)
    return d


def test_fit_reduces_the_length_mismatch(model_dir):
    robot = G1()
    body = load_body_model("smplx", model_dir)
    fit = fit_betas(body, SMPL_FAMILY, robot_rest_keypoints(robot, SMPL_FAMILY.keys()))
    assert fit.residual_after_m < 0.8 * fit.residual_before_m
    assert abs(fit.betas[1]) > 1e-3  # the leg direction of the shape space was used


def test_repose_keeps_the_pose_and_changes_the_shape(model_dir):
    body = load_body_model("smplx", model_dir)
    rng = np.random.default_rng(0)
    t = 5
    params = {"root_orient": rng.normal(scale=0.2, size=(t, 3)), "pose_body": rng.normal(scale=0.3, size=(t, 63)),
              "trans": rng.normal(size=(t, 3)), "betas": np.zeros((t, 10))}
    from retarget.betas_fit import BetasFit

    same = repose(body, params, BetasFit([0.0] * 10, 1.0, 0.0, 0.0))
    np.testing.assert_allclose(same, body.joints(params["root_orient"], params["pose_body"], params["trans"],
                                                 params["betas"]), atol=1e-5)
    longer = repose(body, params, BetasFit([0.0, 2.0] + [0.0] * 8, 1.0, 0.0, 0.0))
    np.testing.assert_allclose(longer[:, 0], same[:, 0], atol=1e-5)  # the pelvis stays put
    assert not np.allclose(longer[:, LEGS], same[:, LEGS], atol=1e-3)


def test_retarget_clip_records_the_betas_fit(model_dir, small_sample):
    from ingest.motionx import discover_motionx, read_motionx

    ref = discover_motionx(small_sample["motionx"])[0]
    seq = read_motionx(ref, load_body_model("smplx", model_dir))
    params = {k: v.astype(np.float64) for k, v in seq.params.items()}
    res = retarget_clip(G1(), seq.joint_names, seq.joint_pos_w, seq.fps,
                        RetargetConfig(body_models_dir=str(model_dir)), params=params)
    fit = res.report["shape_fit"]["betas_fit"]
    assert fit is not None and len(fit["betas"]) == 10 and fit["residual_after_m"] < fit["residual_before_m"]
    assert res.report["metrics"]["joint_limit_violations"] == 0


def test_the_body_model_is_loaded_once_per_process_not_per_clip(model_dir, small_sample, monkeypatch):
    """Loading SMPL-X per clip cost ~3/4 of the retarget time with --body-models."""
    import ingest.body_model as bm
    import retarget.clip as rc
    from ingest.motionx import discover_motionx, read_motionx

    rc._body_model.cache_clear()
    loads = []
    real = bm.load_body_model
    monkeypatch.setattr(bm, "load_body_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    ref = discover_motionx(small_sample["motionx"])[0]
    seq = read_motionx(ref, real("smplx", model_dir))
    params = {k: v.astype(np.float64) for k, v in seq.params.items()}
    for _ in range(3):
        retarget_clip(G1(), seq.joint_names, seq.joint_pos_w[:40], seq.fps,
                      RetargetConfig(body_models_dir=str(model_dir)), params={k: v[:40] if v.ndim and len(v) == len(
                          seq.joint_pos_w) else v for k, v in params.items()})
    assert len(loads) == 1
