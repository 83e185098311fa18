"""Teacher (PPO, MoE residual), student (DAgger, diffusion), resume, export, and the store pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from robomirror import g1_contract as g1
from train.dagger import DaggerConfig, train_student
from train.env.synthetic import library
from train.env.tracking_env import EnvConfig, TrackingEnv
from train.export import TOLERANCE, export_student, onnx_torch_gap
from train.student import StudentConfig, build_student
from train.teacher import MoEResidualModel, PolicyError, TeacherConfig, load_teacher, train_teacher

SMALL = TeacherConfig(iterations=2, save_every=1, steps_per_env=4, num_experts=3, actor_hidden=(32, 16),
                      critic_hidden=(32, 16))


@pytest.fixture(scope="module")
def lib():
    return library(2, seconds=1.5)


def _env(lib):
    return TrackingEnv(lib, EnvConfig(num_envs=4, seed=0))


def test_the_untrained_teacher_replays_the_reference_through_its_residual(lib, tmp_path):
    env = _env(lib)
    from train.teacher import build_runner

    runner = build_runner(env, SMALL)
    actor = runner.alg.actor
    assert isinstance(actor, MoEResidualModel) and len(actor.mlp.experts) == 3
    obs = env.get_observations()
    w = actor.mlp.gate_weights(actor.get_latent(obs))
    assert torch.allclose(w.sum(-1), torch.ones(4)) and w.shape == (4, 3)
    with torch.no_grad():
        for e in actor.mlp.experts:  # zero experts: the action is exactly the reference
            for p in e.parameters():
                p.zero_()
        assert torch.allclose(actor(obs), obs["residual_base"])


def test_a_killed_teacher_run_resumes_bit_identical(lib, tmp_path):
    straight = train_teacher(_env(lib), SMALL, tmp_path / "a")
    import dataclasses

    train_teacher(_env(lib), dataclasses.replace(SMALL, iterations=1), tmp_path / "b")  # "killed" after segment 1
    resumed = train_teacher(_env(lib), SMALL, tmp_path / "b", resume=True)
    assert straight["history"][-1]["iteration"] == resumed["history"][-1]["iteration"] == 2
    a = load_file(str(tmp_path / "a" / "ckpt-00000002" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "ckpt-00000002" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first = load_file(str(tmp_path / "a" / "ckpt-00000001" / "model.safetensors"))
    assert any(not torch.equal(a[k], first[k]) for k in a)  # the second segment did learn something


def test_a_checkpoint_from_another_observation_layout_is_refused(lib, tmp_path):
    train_teacher(_env(lib), SMALL, tmp_path / "t")
    state_path = tmp_path / "t" / "ckpt-00000002" / "state.json"
    st = json.loads(state_path.read_text())
    st["obs_layout"]["teacher"][0][1] = 74
    state_path.write_text(json.dumps(st))
    with pytest.raises(PolicyError, match="observation layout"):
        load_teacher(_env(lib), tmp_path / "t")


def test_dagger_labels_come_from_the_teacher_at_the_states_the_student_visits(lib, tmp_path):
    env = _env(lib)
    proprio = g1.STUDENT_OBS.slices()["proprio_t-0"]

    def teacher(obs):  # a known labelling function of the student's own observation
        return 2.0 * obs["student"][:, proprio][:, :23]
    acted = []
    inner = env.step

    def step(a):
        acted.append(a.clone())
        return inner(a)
    env.step = step
    scfg = StudentConfig(width=32, blocks=1)
    res = train_student(env, teacher, scfg, DaggerConfig(rounds=2, steps_per_round=5, updates_per_round=3, beta0=0.0),
                        tmp_path / "s")
    buf = load_file(str(tmp_path / "s" / "buffer-ckpt-00000002.safetensors"))
    assert buf["obs"].shape == (2 * 5 * 4, 2206)
    assert torch.allclose(buf["action"], 2.0 * buf["obs"].float()[:, proprio][:, :23], atol=2e-2)
    labels = 2.0 * buf["obs"].float()[-20:, proprio][:, :23]
    assert not torch.allclose(torch.cat(acted[-5:]), labels, atol=1e-2)  # beta 0: the student acted
    assert res["history"][-1]["buffer"] == 40


@pytest.mark.parametrize("kw", [dict(), dict(prediction="eps"), dict(ddim_steps=6), dict(sampler="ddpm"),
                                dict(eta=0.5), dict(kind="mlp")])
def test_every_student_variant_samples_finite_actions(kw):
    st = build_student(StudentConfig(width=32, blocks=1, **kw))
    gen = torch.Generator().manual_seed(0)
    a = st(torch.randn(3, 2206), torch.randn(3, 23), gen)
    assert a.shape == (3, 23) and torch.isfinite(a).all()
    loss = st.loss(torch.randn(8, 2206), torch.randn(8, 23), gen)
    loss.backward()
    if kw.get("kind") != "mlp":
        steps = len(st.schedule())
        assert steps == (100 if kw.get("sampler") == "ddpm" else kw.get("ddim_steps", 2))


def test_the_onnx_export_holds_the_ddim_loop_and_matches_torch(tmp_path):
    import onnx

    st = build_student(StudentConfig(width=64, blocks=2))
    st.normalizer.mean.normal_()
    path = export_student(st, tmp_path / "p.onnx", {"vae_id": "v1"})
    assert onnx_torch_gap(st, path) <= TOLERANCE
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert meta["joint_names"] == list(g1.POLICY_JOINTS) and meta["vae_id"] == "v1"
    assert np.allclose(meta["kp"], g1.KP) and meta["obs_layout"][0] == ["motion_latent", 256]
    with pytest.raises(ValueError, match="eta"):
        export_student(build_student(StudentConfig(width=16, blocks=1, eta=0.5)), tmp_path / "q.onnx", {})


@pytest.fixture(scope="module")
def policy_store(latents_built, tmp_path_factory):
    from robomirror.paths import DataLayout
    from train.data import SplitConfig
    from train.pipeline import TrainRunConfig, run_train
    from train.policy import PolicyRunConfig, run_policy

    src, _ = latents_built
    layout = DataLayout(tmp_path_factory.mktemp("policy") / "data")
    shutil.copytree(src.root, layout.root)
    run_train(layout, TrainRunConfig(dit_steps=10, evaluator_steps=5, global_batch=4, eval_replications=2,
                                     split=SplitConfig(seed=0)), progress=False)
    cfg = PolicyRunConfig(where="TRUE", max_clips=3, num_envs=4, teacher=SMALL,
                          student=StudentConfig(width=32, blocks=1),
                          dagger=DaggerConfig(rounds=1, steps_per_round=4, updates_per_round=2), videos=1)
    return layout, run_policy(layout, cfg, progress=False)


def test_the_policy_pipeline_writes_policy_evals_verdicts_and_onnx(policy_store):
    from catalog.sql import query

    layout, s = policy_store
    rows = query(layout, f"SELECT policy, sim, count(*) AS n, avg(mpkpe_m) AS e FROM store_policy_evals "
                         f"WHERE run_id = '{s['run_id']}' GROUP BY ALL ORDER BY ALL").fetchall()
    names = {(p, sim) for p, sim, _, _ in rows}
    assert {("replay_reference", "train"), ("teacher", "train"), ("student_vae", "sim2sim")} <= names
    assert all(n >= 1 and e >= 0 for _, _, n, e in rows)
    verdicts = query(layout, "SELECT count(*), count(*) FILTER (WHERE keep) FROM store_policy_verdicts").fetchone()
    assert verdicts[0] >= 1
    assert s["onnx_max_abs_diff"] <= TOLERANCE
    assert len(s["videos"]) == 1 and Path(s["videos"][0]).stat().st_size > 1000


def test_deploy_run_drives_the_sim_g1_from_a_sample_video(policy_store, small_sample):
    from deploy.run import DeployRunConfig, run_deploy

    layout, s = policy_store
    video = sorted(small_sample["motionx"].glob("video/*/*.mp4"))[0]
    r = run_deploy(layout, DeployRunConfig(video=str(video), seconds=1.5, url="udpm://239.255.76.67:7671?ttl=0"),
                   log=lambda *a: None)
    assert r["latents_received"] >= 1 and r["video_to_first_action_s"] is not None
    assert r["video_to_first_action_s"] > 0 and r["period_error_ms"]["p50"] < 5.0
    assert Path(r["mp4"]).stat().st_size > 1000
    assert any("ramp->hold" in t or "ramp->policy" in t for t in r["transitions"])
    saved = json.loads((Path(r["mp4"]).parent / "latency.json").read_text())
    assert saved["run_id"] == r["run_id"] and len(saved["period_error_hist_ms"]) == 20


def test_the_dit_exports_to_onnx_and_matches_torch(policy_store):
    import onnxruntime as ort

    from robomirror.dit import load_trained
    from train.export import DiTSampler

    layout, s = policy_store
    assert s["dit_onnx"] is not None
    sess = ort.InferenceSession(s["dit_onnx"], providers=["CPUExecutionProvider"])
    meta = {k: json.loads(v) for k, v in sess.get_modelmeta().custom_metadata_map.items()}
    model, flow, _ = load_trained(layout.root / "runs" / "train" / meta["dit_run"])
    cfg = model.dit.cfg
    rng = np.random.default_rng(0)
    feed = {"noise": rng.normal(size=(1, cfg.motion_tokens, cfg.motion_dim)).astype(np.float32),
            "video_tokens": rng.normal(size=(1, meta["video_tokens"], cfg.video_dim)).astype(np.float32),
            "video_pooled": rng.normal(size=(1, cfg.video_dim)).astype(np.float32)}
    got = sess.run(None, feed)[0]
    with torch.no_grad():
        want = DiTSampler(model, flow)(*(torch.from_numpy(feed[k]) for k in ("noise", "video_tokens", "video_pooled")))
    assert got.shape == (1, cfg.motion_dim) and np.abs(got - want.numpy()).max() < 1e-4


def test_a_killed_dagger_run_resumes_bit_identical(lib, tmp_path):
    import dataclasses

    def teacher(obs):
        return obs["residual_base"]
    scfg = StudentConfig(width=32, blocks=1)
    dcfg = DaggerConfig(rounds=2, steps_per_round=4, updates_per_round=3)
    train_student(_env(lib), teacher, scfg, dcfg, tmp_path / "a")
    train_student(_env(lib), teacher, scfg, dataclasses.replace(dcfg, rounds=1), tmp_path / "b")
    train_student(_env(lib), teacher, scfg, dcfg, tmp_path / "b", resume=True)
    a = load_file(str(tmp_path / "a" / "ckpt-00000002" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "ckpt-00000002" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(PolicyError, match="student config"):
        train_student(_env(lib), teacher, dataclasses.replace(scfg, width=16), dcfg, tmp_path / "b", resume=True)


def test_the_student_can_train_on_the_dits_latents(policy_store):
    import dataclasses

    from catalog.sql import query
    from train.policy import PolicyRunConfig, run_policy

    layout, _ = policy_store
    cfg = PolicyRunConfig(where="TRUE", latents="v2m", max_clips=2, num_envs=4, teacher=dataclasses.replace(SMALL, iterations=1),
                          student=StudentConfig(width=16, blocks=1),
                          dagger=DaggerConfig(rounds=1, steps_per_round=2, updates_per_round=1), sims=("train",), videos=0)
    s = run_policy(layout, cfg, progress=False)
    trained_on = query(layout, f"SELECT DISTINCT student_trained_on FROM store_policy_evals WHERE run_id = '{s['run_id']}'")
    assert trained_on.fetchall() == [("v2m",)]


def test_rows_of_a_newer_schema_join_a_table_written_by_older_code(tmp_path):
    import lancedb
    import pyarrow as pa

    from train.policy import _write_rows

    db = lancedb.connect(str(tmp_path))
    db.create_table("policy_evals", data=pa.Table.from_pylist([{"run_id": "old", "mpkpe_m": 0.2}]))
    _write_rows(tmp_path, "policy_evals", [{"run_id": "new", "mpkpe_m": 0.1, "student_trained_on": "vae"}], "new")
    _write_rows(tmp_path, "policy_evals", [{"run_id": "new", "mpkpe_m": 0.3, "student_trained_on": "vae"}], "new")
    rows = sorted(db.open_table("policy_evals").to_arrow().to_pylist(), key=lambda r: r["run_id"])
    assert [(r["run_id"], r["mpkpe_m"], r["student_trained_on"]) for r in rows] == [("new", 0.3, "vae"),
                                                                                    ("old", 0.2, None)]
