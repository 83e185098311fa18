"""Scene clips from ingest to an env episode (issue 22): a stair climb and a sit on a bench, written in
holosoma's climbing layout by the sample writer, ingested, retargeted on their scenes, loaded as a motion
library whose env holds each scene as a height field enabled only in the worlds playing it; the reference
replayed through the PD (no policy) from a reset on a tread / on the seat keeps the feet on the stairs'
geometry (contact with the scene geom at the tread's height, nothing below its surface) and the seat on
the bench, while a flat clip beside them touches no scene."""

from __future__ import annotations

import json

import mujoco
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from ingest.config import IngestConfig
from ingest.pipeline import run_ingest
from ingest.sample.scenes import write_scene_sequence
from retarget.config import RetargetConfig
from retarget.interop import load_clip_motion
from retarget.pipeline import run_retarget
from retarget.scene_ground import local_height_map
from robomirror import g1_contract as g1
from robomirror.atomic import load_npz_bytes
from robomirror.paths import DataLayout
from robomirror.shards import find_sample
from train.env.actuation import FOOT_GEOMS, SIMS, build_model
from train.env.motion_library import Clip, MotionLibrary, clip_scene
from train.env.randomization import NOMINAL
from train.env.scene import SceneHeights
from train.env.synthetic import sway_clip
from train.env.tracking_env import EnvConfig, TrackingEnv
from train.sim2sim import evaluate, summarize

STEPS = 10  # 0.2 s of replay
SINK_M = 0.02  # a foot this far inside the scene's surface is penetration



@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> DataLayout:
    src = tmp_path_factory.mktemp("scene_src")
    for kind in ("stairs", "bench"):
        write_scene_sequence(src, kind)
    layout = DataLayout(tmp_path_factory.mktemp("scene_root"))
    run_ingest(layout, {"holosoma_climb": src}, IngestConfig(clip_frames=90, stride_frames=90, min_frames=30),
               executor="serial", progress=False)
    run_retarget(layout, RetargetConfig(on_error="raise"), executor="serial", progress=False)
    return layout


@pytest.fixture(scope="module")
def lib(layout) -> MotionLibrary:
    rows = [r for m in sorted(layout.root.glob("shards/retarget/*/manifest.parquet")) for r in pq.read_table(m).to_pylist()]
    first = {}
    for r in sorted(rows, key=lambda r: r["clip_id"]):
        first.setdefault(r["scene_kind"], r)  # one stairs clip, one bench clip
    clips = []
    for kind in ("stairs", "bench"):
        motion, report = load_clip_motion(layout, first[kind]["clip_id"])
        clips.append(Clip(first[kind]["clip_id"], motion, np.zeros(256, np.float32), {"kind": kind, "latents": "vae"},
                          clip_scene(layout, report)))
    clips.append(sway_clip())
    return MotionLibrary(clips, build_model(SIMS["train"]))


def test_retarget_sample_carries_the_height_map(layout, lib):
    members = find_sample(layout.root, "retarget", lib.clip_ids[0])
    hm = load_npz_bytes(members["height_map.npz"])
    motion, _ = load_clip_motion(layout, lib.clip_ids[0])
    assert hm["height_map_m"].shape == (motion.n_frames, 11, 11)
    want = local_height_map(lib.scenes[lib.scene_of_clip[0]], motion.root_pos_w, motion.root_quat_wxyz)
    assert np.allclose(hm["height_map_m"], want, atol=1e-6)


def _on_tread(lib: MotionLibrary) -> int:
    """A frame of the stairs clip whose reference has a foot in contact on a tread (above the floor)."""
    scene = lib.scenes[lib.scene_of_clip[0]]
    ref = lib.frame(np.zeros(lib.lengths[0], dtype=int), np.arange(lib.lengths[0]))
    ankles = ref["kp_pos"][:, [6, 12]]  # left, right ankle roll links
    under = scene.height_at(ankles[..., :2])
    ok = (under > 0.05) & (ref["contact"] > 0.5)
    frames = np.flatnonzero(ok.any(1) & (np.arange(len(ok)) < lib.lengths[0] - STEPS - 2))
    assert len(frames), "the stairs clip never puts a foot on a tread"
    return int(frames[len(frames) // 2])


def _contacts(env: TrackingEnv, world: int) -> list[tuple[int, int, float, np.ndarray]]:
    d = env.batch.get_data(world)
    c, n = d.contact, d.ncon
    return [(int(c.geom[i, 0]), int(c.geom[i, 1]), float(c.dist[i]), c.pos[i].copy()) for i in range(n)]


def _episode(lib: MotionLibrary) -> tuple[TrackingEnv, dict, list, dict]:
    """Three worlds (stairs from a frame with a foot on a tread, bench from its lowest pelvis, the flat sway)
    replayed STEPS steps; per world, every contact with a scene geom, and the worst foot sink below the
    stairs' surface over the episode."""
    env = TrackingEnv(lib, EnvConfig(num_envs=3, height_map=True).evaluation())
    bench = lib.frame(np.ones(lib.lengths[1], dtype=int), np.arange(lib.lengths[1]))["root_pos"][:, 2]
    frames = np.array([_on_tread(lib), min(int(np.argmin(bench)), lib.lengths[1] - STEPS - 2), 0])
    env.reset(np.arange(3), clips=np.arange(3), frames=frames)  # RSI onto the tread and the seat
    m = env.model
    feet = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, g) for side in FOOT_GEOMS.values() for g in side}
    scene_geoms = set(env.scene_geoms.geoms.tolist())
    stairs = lib.scenes[lib.scene_of_clip[0]]
    touched: dict[int, list] = {0: [], 1: [], 2: []}
    sink = []
    obs = env.get_observations()
    for _ in range(STEPS):
        obs, _, done, extras = env.step(obs["residual_base"])  # replay the reference through the PD
        assert not done.any(), extras["terminated"]
        for w in range(3):
            for g0, g1_, dist, pos in _contacts(env, w):
                if g0 in scene_geoms or g1_ in scene_geoms:
                    scene, other = (g0, g1_) if g0 in scene_geoms else (g1_, g0)
                    touched[w].append({"foot": other in feet, "dist": dist, "z": pos[2], "scene": scene})
        d = env.batch.get_data(0)
        sink.append(max(float(stairs.height_at(d.geom_xpos[g, :2])) - (d.geom_xpos[g, 2] - m.geom_size[g, 0])
                        for g in feet))
    return env, touched, sink, obs


@pytest.fixture(scope="module")
def episode(lib):
    return _episode(lib)


def test_bench_clip_sits_on_its_bench_and_a_flat_clip_touches_no_scene(lib, episode):
    env, touched, _, obs = episode
    bench_geom = int(env.scene_geoms.geoms[lib.scene_of_clip[1]])
    assert any(not t["foot"] for t in touched[1])  # the seat (pelvis, hips) rests on the bench geom
    assert all(t["scene"] == bench_geom for t in touched[1])  # its own scene only, never the stairs
    assert touched[2] == []  # the flat clip's world has no scene
    assert all(t["scene"] == int(env.scene_geoms.geoms[lib.scene_of_clip[0]]) for t in touched[0])
    hm = obs["height_map"].numpy()
    assert hm.shape == (3, 121) and np.allclose(hm[2], -env.state.root_pos_w[2, 2], atol=1e-5)  # flat: a flat grid
    assert np.array_equal(obs["teacher"].numpy()[:, -121:], hm) and np.array_equal(obs["student"].numpy()[:, -121:], hm)


def test_stairs_clip_feet_are_supported_by_the_stairs(lib, episode):
    _, touched, sink, _ = episode
    feet_on_stairs = [t for t in touched[0] if t["foot"]]
    assert feet_on_stairs, touched[0]
    assert max(t["z"] for t in feet_on_stairs) > 0.05  # on a tread, not the floor
    assert min(t["dist"] for t in feet_on_stairs) > -SINK_M  # no penetration of the step surface
    assert max(sink) < SINK_M  # no foot sphere below the surface under it


def test_sim2sim_reports_flat_and_scene_clips_apart(lib):
    results = evaluate(lambda o: o["residual_base"], lib.subset([0, 2]), "train")
    assert [r.ground for r in results] == ["stairs", "flat"]
    table = summarize(results, by_ground=True)
    assert list(table) == ["all", "flat", "scene", "stairs"]
    assert table["scene"]["clips"] == table["stairs"]["clips"] == table["flat"]["clips"] == 1 and table["all"]["clips"] == 2
    assert set(table["scene"]) == {"succ", "mpjpe_rad", "mpkpe_m", "clips"}
    assert table["stairs"]["mpkpe_m"] == results[0].mpkpe_m and table["flat"]["mpkpe_m"] == results[1].mpkpe_m


def test_make_policy_rows_tables_and_report_split_by_ground(lib, tmp_path, capsys):
    """`make policy`'s evaluation on a stairs, a bench and a flat clip in both simulators: every policy_evals row
    says its ground, the table by ground has each one, and the printed summary and the report show it."""
    from catalog.report import _policy_section
    from train.policy import evaluate_policies, print_policy_summary

    rows, table, by_ground = evaluate_policies([("replay_reference", lambda o: o["residual_base"], lib)],
                                               ("train", "sim2sim"), "run0", {"vae_id": "v", "vlm_id": None}, "vae")
    assert sorted((r["sim"], r["ground"]) for r in rows) == sorted(
        (sim, g) for sim in ("train", "sim2sim") for g in ("stairs", "bench", "flat"))
    for key in ("replay_reference/train", "replay_reference/sim2sim"):
        assert list(by_ground[key]) == ["all", "flat", "scene", "bench", "stairs"]
        assert by_ground[key]["scene"]["clips"] == 2 and by_ground[key]["all"] == table[key]
        for g in ("flat", "bench", "stairs"):
            (row,) = [r for r in rows if r["ground"] == g and key.endswith(r["sim"])]
            assert by_ground[key][g]["mpkpe_m"] == row["mpkpe_m"] and by_ground[key][g]["succ"] == row["success"]
    summary = {"run_id": "run0", "run_dir": str(tmp_path), "train_seconds": 0.0, "table": table,
               "table_by_ground": by_ground, "onnx": "p.onnx", "onnx_max_abs_diff": 0.0, "flagged_clips": 0,
               "teacher": [{"iteration": 1, "mean_episode_len": 1.0, "mean_episode_reward": 0.0}],
               "student": [{"round": 1, "loss": 0.0}], "videos": []}
    print_policy_summary(summary)
    printed = capsys.readouterr().out
    stairs = by_ground["replay_reference/sim2sim"]["stairs"]
    assert f"{'replay_reference/sim2sim':28s} {'stairs':8s} {stairs['succ']:6.2f} {stairs['mpjpe_rad']:12.3f}" in printed
    assert "PLUMBING, not a tracker" in printed  # `make policy` says what it is, in its own output
    run = tmp_path / "data" / "runs" / "policy" / "run0"
    run.mkdir(parents=True)
    (run / "eval.json").write_text(json.dumps(summary))
    page = _policy_section(DataLayout(tmp_path / "data"), tmp_path)
    assert "<th>ground</th>" in page and "<td>bench</td>" in page and "<td>stairs</td>" in page


def test_rsi_on_scene_clips_starts_on_the_scene_and_replays(lib):
    """The env's own reference state initialisation (random phases, as in training) on the stairs, the bench
    and a flat clip: every world starts with no foot inside its clip's scene, and replaying the reference
    from there runs without a failure."""
    n = 12
    env = TrackingEnv(lib, EnvConfig(num_envs=n, rsi=True, randomization=NOMINAL, seed=3))
    env.reset(np.arange(n), clips=np.arange(n) % 3)  # frames drawn by RSI
    assert len(set(env.frame[env.clip == 0].tolist())) > 1  # several phases of the stairs clip
    m = env.model
    feet = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, g) for side in FOOT_GEOMS.values() for g in side]
    for w in range(n):
        k = lib.scene_of_clip[env.clip[w]]
        d = env.batch.get_data(w)
        under = lib.scenes[k].height_at(d.geom_xpos[feet, :2]) if k >= 0 else np.zeros(len(feet))
        assert (under - (d.geom_xpos[feet, 2] - m.geom_size[feet, 0])).max() < SINK_M, (w, env.clip[w], env.frame[w])
    obs = env.get_observations()
    for _ in range(5):
        obs, _, done, extras = env.step(obs["residual_base"])
        assert not extras["terminated"].any(), (env.clip[extras["terminated"]], env.frame[extras["terminated"]])



def test_scene_heights_gather_is_each_scenes_own_surface(lib):
    """All worlds' surfaces in one gather (padded grids of different shapes and cells, and the flat floor)
    equal each scene's own bilinear lookup, inside and outside its grid."""
    heights = SceneHeights.of(lib.scenes)
    rng = np.random.default_rng(0)
    scene = np.array([0, 1, -1, 1, 0, -1])
    lo = np.array([min(sc.origin_xy_m[0] for sc in lib.scenes), min(sc.origin_xy_m[1] for sc in lib.scenes)])
    xy = rng.uniform(lo - 0.5, lo + 3.0, size=(len(scene), 7, 5, 2))
    got = heights.height_at(scene, xy)
    for n, k in enumerate(scene):
        want = np.zeros(xy.shape[1:-1]) if k < 0 else lib.scenes[k].height_at(xy[n])
        assert np.allclose(got[n], want, atol=1e-12), n
    assert np.ptp(got[scene >= 0]) > 0.1  # the points do cover steps and seats, not only the floor


def test_env_height_map_slice_is_the_stores_height_map_on_a_stair_clip(layout, lib):
    """RSI puts world 0's root on the stairs clip's reference: its height_map_rel_root_m slice then reads what
    the store's height_map.npz holds for that frame (the store at the retarget rate, the env at 50 Hz: frames
    at the same instant)."""
    motion, _ = load_clip_motion(layout, lib.clip_ids[0])
    hm = load_npz_bytes(find_sample(layout.root, "retarget", lib.clip_ids[0])["height_map.npz"])["height_map_m"]
    rate = g1.POLICY_HZ / motion.fps
    same = [f for f in range(motion.n_frames) if abs(f * rate - round(f * rate)) < 1e-9 and round(f * rate) < lib.lengths[0] - 2]
    store_frames = np.array(same[:: max(1, len(same) // 4)][:4])
    env = TrackingEnv(lib, EnvConfig(num_envs=len(store_frames), height_map=True).evaluation())
    env.reset(np.arange(len(store_frames)), clips=np.zeros(len(store_frames), dtype=int),
              frames=np.round(store_frames * rate).astype(int))
    obs = env.observation_arrays()
    sl = g1.teacher_obs(True).slices()[g1.HEIGHT_MAP_TERM]
    got = obs["teacher"][:, sl].reshape(-1, 11, 11)
    want = hm[store_frames]
    assert np.abs(got - want).max() < 1e-3, np.abs(got - want).max()
    assert np.ptp(want, axis=(1, 2)).max() > 0.05  # the grid sees a step, so the comparison means something
    assert np.array_equal(obs["student"][:, g1.student_obs(256, True).slices()[g1.HEIGHT_MAP_TERM]], obs["teacher"][:, sl])


def test_height_map_off_by_default_leaves_the_observations_unchanged(lib):
    """Off (the default) the groups are the contract's 489 / 250 / 2206 / 23 with no terrain; on, the same
    worlds' teacher and student observations are those values, byte for byte, followed by the 121."""
    frames = np.array([3, 5, 0])
    obs = {}
    for on in (False, True):
        env = TrackingEnv(lib, EnvConfig(num_envs=3, height_map=on).evaluation())
        env.reset(np.arange(3), clips=np.arange(3), frames=frames)
        env.step(torch.as_tensor(env.observation_arrays()["residual_base"]))
        obs[on] = env.observation_arrays()
    assert set(obs[False]) == {"teacher", "privileged", "student", "residual_base"}
    assert [obs[False][k].shape[1] for k in ("teacher", "privileged", "student")] == [489, 250, 2206]
    assert set(obs[True]) == set(obs[False]) | {"height_map"}
    for k in ("teacher", "student"):
        assert obs[True][k].shape[1] == obs[False][k].shape[1] + 121
        assert obs[True][k][:, :-121].tobytes() == obs[False][k].tobytes()
    assert obs[True]["privileged"].tobytes() == obs[False]["privileged"].tobytes()


def test_a_student_trained_on_the_height_map_evaluates_and_the_runtime_refuses_it(lib, tmp_path):
    """`make policy --height-map`'s pieces on scene clips: DAgger on an env whose student observation carries the
    slice, the evaluation by ground with it, the export naming it, the runtime refusing it by name."""
    from deploy.runtime import DeployError, OnnxPolicy
    from train.dagger import DaggerConfig, load_student, train_student
    from train.export import export_student
    from train.student import StudentConfig

    scfg = StudentConfig(kind="mlp", width=16, blocks=1, height_map=True)
    env = TrackingEnv(lib, EnvConfig(num_envs=3, height_map=True))
    train_student(env, lambda o: o["residual_base"], scfg, DaggerConfig(rounds=1, steps_per_round=2, updates_per_round=1),
                  tmp_path / "student")
    student = load_student(tmp_path / "student")
    assert student.cfg.height_map and student.cfg.obs_dim == 2206 + 121
    results = evaluate(lambda o: student(o["student"], torch.zeros((len(o["student"]), 23))), lib, "train",
                       height_map=True)
    assert [r.ground for r in results] == ["stairs", "bench", "flat"] and all(r.steps >= 1 for r in results)
    path = export_student(student, tmp_path / "terrain.onnx", {})
    with pytest.raises(DeployError, match=g1.HEIGHT_MAP_TERM):
        OnnxPolicy(path)
