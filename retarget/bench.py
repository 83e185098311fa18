"""`make bench` for retarget: speed and quality trade-offs measured in the same run.

On the synthetic sample (ingest shards under the data root, or a fresh small corpus) it times the
pink IK at several iteration counts and with/without the contact lock, and prints each variant's
frames/s and quality next to the 1-iteration baseline. With ../shared/realdata present it also
retargets real G1 motions' own keypoints (robot -> keypoints -> IK) and reports the recovery
error: a ground-truth accuracy figure on real motion.
Peers' published figures are printed for reference only; they were not measured here.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import webdataset as wds
from rich.console import Console
from rich.table import Table

from ingest.scene_holosoma import HOLOSOMA_MOCAP_JOINTS
from ingest.scene_holosoma import SOURCE_FPS as HOLOSOMA_FPS
from retarget.clip import retarget_clip
from retarget.config import RetargetConfig
from retarget.correspondence import G1_KEYPOINTS
from retarget.robot import G1
from robomirror.paths import DataLayout, resolve_data_root
from robomirror.shards import published_shards

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
PEERS = "reference (not measured here): GMR ~50 frames/s, MPKPE-aligned 5.5 cm, skate 29 cm/s, penetration 2.7 cm; " \
        "holosoma 1.4-3.3 frames/s, MPKPE-aligned 3.4-3.9 cm, penetration 0.2-0.3 cm (their real mocap)"


def _human_clips(layout: DataLayout, limit: int = 8):
    urls = [str(p) for m in sorted(layout.root.glob("shards/ingest/*/manifest.parquet")) for p in published_shards(m)]
    if not urls:
        from ingest.config import IngestConfig
        from ingest.pipeline import run_ingest
        from ingest.sample.corpus import SampleConfig, build_sample

        tmp = Path(tempfile.mkdtemp(prefix="robomirror-bench-"))
        layout = DataLayout(tmp)
        run_ingest(layout, build_sample(tmp / "sample", SampleConfig(n_motionx=6, n_nymeria=1), progress=False),
                   IngestConfig(), executor="serial", progress=False)
        urls = [str(p) for m in sorted(layout.root.glob("shards/ingest/*/manifest.parquet")) for p in published_shards(m)]
    out = []
    for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        h = np.load(io.BytesIO(s["human.npz"]))
        out.append((tuple(str(n) for n in h["joint_names"]), h["joint_pos_w"], float(h["fps"])))
        if len(out) == limit:
            break
    return out


def _run(robot: G1, clips, cfg: RetargetConfig) -> dict:
    frames, t0, rows = 0, time.perf_counter(), []
    for names, joints, fps in clips:
        r = retarget_clip(robot, names, joints, fps, cfg)
        frames += r.motion.n_frames
        rows.append(r.report["metrics"])
    dt = time.perf_counter() - t0
    med = lambda k: float(np.median([m[k] for m in rows]))  # noqa: E731
    return {"fps": frames / dt, "mpkpe": med("mpkpe_aligned_mean_m"), "target": med("target_error_mean_m"),
            "skate": med("foot_skate_cm_s"), "pen": med("penetration_cm")}


def _real_recovery(robot: G1) -> list[tuple[str, float, float, float]]:
    from retarget.interop import import_gmr, import_pbhc

    out = []
    for path in sorted(REALDATA.glob("*.pkl")):
        m = import_pbhc(path)[0] if path.name.startswith("pbhc") else import_gmr(path)
        if m.fps != 30.0:
            m = m.resampled(30.0)
        qpos = robot.qpos(m.root_pos_w, m.root_quat_wxyz, m.joint_pos)
        names = tuple(G1_KEYPOINTS)
        kp = robot.keypoints(qpos, names)
        r = retarget_clip(robot, tuple(G1_KEYPOINTS[n] for n in names), kp, 30.0, RetargetConfig())
        got = robot.keypoints(robot.qpos(r.motion.root_pos_w, r.motion.root_quat_wxyz, r.motion.joint_pos), names)
        err = np.linalg.norm(got - kp, axis=-1)
        pose = np.linalg.norm((got - got.mean(1, keepdims=True)) - (kp - kp.mean(1, keepdims=True)), axis=-1)
        out.append((path.stem, float(err.mean()), float(pose.mean()),
                    float(np.abs(r.motion.joint_pos - m.joint_pos).mean())))
    return out


# holosoma-retargeting ships real climbing mocap (joint positions, z-up, metres) in the joint order of
# ingest.scene_holosoma.HOLOSOMA_MOCAP_JOINTS; only its data files are read, the package is never installed (it pins numpy).
HOLOSOMA_WHEEL = "holosoma-retargeting==0.1.0"


def _holosoma_mocap(cache: Path, frames: int = 600) -> list[tuple[str, np.ndarray]]:
    """Real human mocap from the holosoma-retargeting wheel (downloaded once into `cache`), at 30 Hz: the
    files are 120 Hz, and holosoma's own reader keeps every 4th frame, as this does; `frames` at 30 Hz."""
    import zipfile

    from robomirror.wheel_cache import cached_wheel

    wheel = cached_wheel(cache, HOLOSOMA_WHEEL, "holosoma_retargeting-*.whl")
    if wheel is None:
        return []
    wheels = [wheel]
    out = []
    with zipfile.ZipFile(wheels[-1]) as z:
        for name in sorted(n for n in z.namelist() if n.endswith(".npy") and "/climb/" in n):
            arr = np.load(io.BytesIO(z.read(name)), allow_pickle=False)
            if arr.ndim == 3 and arr.shape[1] == len(HOLOSOMA_MOCAP_JOINTS):
                step = int(round(HOLOSOMA_FPS / 30.0))
                out.append((Path(name).stem.split("_joint")[0], arr[::step][:frames].astype(np.float64)))
    return out


# GMR on the same DeepMimic clips and G1 MJCF, as measured by the issue that asked for this table
# (issue 9; not re-run here: GMR is not installable offline): median over clips of the worst keypoint
# error 16 cm, mean 5.5 cm.
GMR_DEEPMIMIC = {"median_max_cm": 16.0, "mean_cm": 5.5}


def human_foot_skate_cm_s(joint_names: tuple[str, ...], joints: np.ndarray, fps: float) -> float:
    """The source's own foot skate, with the robot's definition: ankle speed while the lowest foot
    point (toe, or the sole 5 cm under the ankle) is within 2 cm of the floor at z = 0."""
    from retarget.clip import human_keypoints
    from retarget.metrics import foot_skate_cm_s

    _, kp = human_keypoints(joint_names, joints)
    low = np.stack([np.minimum(kp[f"{s}_toe"][:, 2], kp[f"{s}_ankle"][:, 2] - 0.05) for s in ("left", "right")], 1)
    ankles = np.stack([kp[f"{s}_ankle"][:, :2] for s in ("left", "right")], 1)
    return foot_skate_cm_s(ankles, low, fps)


def _retarget_timed(robot: G1, clip, cfg: RetargetConfig, repeats: int = 3):
    """retarget_clip's result with its IK frames/s the best of `repeats` runs (the result itself is
    deterministic): on a shared VM one run's speed moves by +-30 %, the best of three estimates the code."""
    runs = [retarget_clip(robot, clip.joint_names, clip.joint_pos_w, clip.fps, cfg) for _ in range(repeats)]
    best = max(r.report["timing"]["ik_frames_per_s"] for r in runs)
    runs[0].report["timing"]["ik_frames_per_s"] = best
    return runs[0]


def deepmimic_table(console: Console, robot: G1, cache: Path) -> None:
    """Real human mocap of hard skills (DeepMimic, from pybullet's wheel) -> G1: the old heading foot
    frame against the current one, every metric beside the source's own skate and GMR's figures."""
    from retarget.deepmimic import download_wheel, load_clips

    wheel = download_wheel(cache)
    if wheel is None:
        console.print("(pybullet wheel unavailable: DeepMimic mocap skipped)")
        return
    clips = load_clips(wheel)
    summary = {}
    for frame in ("heading", "shin"):
        t = Table(title=f"DeepMimic mocap (pybullet {wheel.name.split('-')[1]}, {len(clips)} clips) -> G1, "
                        f"foot frame '{frame}'{' (default)' if frame == 'shin' else ' (before issue 9)'}")
        for c in ("clip", "frames", "IK frames/s", "mean cm", "max cm", "skate cm/s", "source skate",
                  "penetr. cm", "limit viol.", "self-coll. frames", "stability"):
            t.add_column(c, justify="right")
        rows = []
        for c in clips:
            r = _retarget_timed(robot, c, RetargetConfig(foot_frame=frame, floor_z_m=0.0))
            m = r.report["metrics"]
            rows.append((100 * m["mpkpe_aligned_mean_m"], 100 * m["mpkpe_aligned_max_m"], m["foot_skate_cm_s"],
                         human_foot_skate_cm_s(c.joint_names, c.joint_pos_w, c.fps), m["penetration_cm"],
                         m["joint_limit_violations"] + m["velocity_limit_violations"], r.report["timing"]["ik_frames_per_s"],
                         m["self_collision_frames"]))
            t.add_row(c.name, str(len(c.joint_pos_w)), f"{rows[-1][6]:.0f}", f"{rows[-1][0]:.1f}", f"{rows[-1][1]:.1f}",
                      f"{rows[-1][2]:.1f}", f"{rows[-1][3]:.1f}", f"{rows[-1][4]:.2f}", str(rows[-1][5]),
                      str(m["self_collision_frames"]), r.report["stability"]["reason"])
        a = np.array(rows)
        summary[frame] = a
        if frame == "shin":
            console.print(t)
    # the speed baseline, in this run: pink.solve_ik with its own tasks one by one and 4 iterations per
    # frame, the retargeter before issue 9 (the same QP: ik_velocity equals it, tested)
    import retarget.ik as ik

    real_velocity, ik.ik_velocity = ik.ik_velocity, ik.pink_reference_velocity
    try:
        base = [_retarget_timed(robot, c, RetargetConfig(iterations_per_frame=4, floor_z_m=0.0)).report["timing"][
            "ik_frames_per_s"] for c in clips]
    finally:
        ik.ik_velocity = real_velocity
    ours = float(np.median(summary["shin"][:, 6]))
    console.print(f"IK speed (best of 3 runs per clip): median {ours:.0f} frames/s per clip against {np.median(base):.0f} for pink.solve_ik one task "
                  f"at a time with 4 iterations (before issue 9), same clips, same run: {ours / np.median(base):.1f}x")
    avoid = np.array([[r.report["metrics"][k] for k in ("self_collision_frames", "mpkpe_aligned_max_m", "mpkpe_aligned_mean_m")]
                      + [r.report["timing"]["ik_frames_per_s"]]
                      for r in (_retarget_timed(robot, c, RetargetConfig(floor_z_m=0.0, self_collision=True)) for c in clips)])
    shin = summary["shin"]
    console.print(f"self-collision avoidance (--self-collision, off by default): self-collision frames {int(shin[:, 7].sum())} "
                  f"-> {int(avoid[:, 0].sum())} over the clips, median worst-keypoint error {np.median(shin[:, 1]):.1f} -> "
                  f"{100 * np.median(avoid[:, 1]):.1f} cm, mean {shin[:, 0].mean():.1f} -> {100 * avoid[:, 2].mean():.1f} cm, "
                  f"median IK {np.median(shin[:, 6]):.0f} -> {np.median(avoid[:, 3]):.0f} frames/s "
                  f"({np.median(avoid[:, 3]) / np.median(shin[:, 6]):.2f}x)")
    for frame, a in summary.items():
        console.print(f"foot frame {frame!r}: median worst-keypoint error {np.median(a[:, 1]):.1f} cm "
                      f"(GMR {GMR_DEEPMIMIC['median_max_cm']:.0f}), mean {a[:, 0].mean():.1f} cm "
                      f"(GMR {GMR_DEEPMIMIC['mean_cm']}), clips with skate above the source's "
                      f"{int((a[:, 2] > a[:, 3] + 0.5).sum())}/{len(a)}, max penetration {a[:, 4].max():.2f} cm, "
                      f"limit violations {int(a[:, 5].sum())}, median IK {np.median(a[:, 6]):.0f} frames/s")
    console.print("GMR figures: measured by issue 9 on the same clips and MJCF, not re-run here. Stability: clips "
                  "that start lying or crawling fail the CoM-CoP criterion on their first frame by design (it "
                  "judges standing support); self-collision frames are mostly a wrist touching the wider G1 hip.")


def deepmimic_motionx_rows(robot: G1, wheel: Path, min_frames: int = 24) -> tuple[list[dict], dict]:
    """DeepMimic's clips both ways: straight from the wheel (direct) and written as Motion-X sequences,
    then ingested by the real pipeline (reader, up-axis decision, clips, shards, ledger) and retargeted
    from the shards (Motion-X path). Returns one row per clip and path, and the Motion-X path's counts.

    min_frames: the ingest's shortest clip [frames at 30 Hz]; DeepMimic's clips are 0.8-4.5 s and the
    default (60) would drop the short ones as too_short before their axis is ever decided."""
    import pyarrow.parquet as pq

    from ingest.config import IngestConfig
    from ingest.failures import read_ledger
    from ingest.pipeline import run_ingest
    from retarget.deepmimic import load_clips
    from retarget.deepmimic_motionx import write_motionx_root

    def metrics(names, joints, fps) -> dict:
        m = retarget_clip(robot, names, joints, fps, RetargetConfig(floor_z_m=0.0)).report["metrics"]
        return {"frames": len(joints), "mean_cm": 100 * m["mpkpe_aligned_mean_m"], "max_cm": 100 * m["mpkpe_aligned_max_m"],
                "max_frame": m["mpkpe_aligned_max_frame"], "skate": m["foot_skate_cm_s"], "pen": m["penetration_cm"],
                "limits": m["joint_limit_violations"] + m["velocity_limit_violations"]}

    rows = [{"clip": c.name, "path": "direct", "ingest": "read", **metrics(c.joint_names, c.joint_pos_w, c.fps)}
            for c in load_clips(wheel)]
    tmp = Path(tempfile.mkdtemp(prefix="robomirror-deepmimic-motionx-"))
    written = write_motionx_root(wheel, tmp / "motionx")
    layout = DataLayout(tmp / "data")
    run_ingest(layout, {"motionx": tmp / "motionx"}, IngestConfig(min_frames=min_frames), executor="serial",
               progress=False)
    refused = {f.sequence: f.reason for f in read_ledger(layout.ledger("ingest"))}
    manifest = layout.manifest("ingest", "motionx")
    clips = {}
    if manifest.exists():
        urls = [str(p) for p in published_shards(manifest)]
        for smp in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
            meta = json.loads(smp["meta.json"])
            h = np.load(io.BytesIO(smp["human.npz"]))
            clips.setdefault(meta["sequence"], []).append(
                (meta["start_frame"], tuple(str(n) for n in h["joint_names"]), h["joint_pos_w"], float(h["fps"]),
                 meta["notes"]["source_up_axis"]))
        n_rows = pq.read_metadata(manifest).num_rows
    else:
        n_rows = 0
    for subset, name in written:
        if name not in clips:
            rows.append({"clip": name, "path": "Motion-X", "ingest": refused.get(name, "no clip"), "frames": 0})
            continue
        parts = sorted(clips[name], key=lambda x: x[0])
        joints = np.concatenate([x[2] for x in parts])  # consecutive clips of one sequence
        rows.append({"clip": name, "path": "Motion-X", "ingest": f"{subset}, up {parts[0][4]}",
                     **metrics(parts[0][1], joints, parts[0][3])})
    counts = {"in": len(written), "ingested": sum(n in clips for _, n in written), "clips": n_rows, "refused": refused,
              "min_frames": min_frames}
    return rows, counts


def deepmimic_motionx_table(console: Console, robot: G1, cache: Path) -> None:
    """The direct and Motion-X-path rows of DeepMimic's clips in one table, with the path's counts."""
    from retarget.deepmimic import download_wheel

    wheel = download_wheel(cache)
    if wheel is None:
        console.print("(pybullet wheel unavailable: DeepMimic through Motion-X skipped)")
        return
    rows, n = deepmimic_motionx_rows(robot, wheel)
    t = Table(title=f"DeepMimic mocap -> G1, direct and through Motion-X files (ingest min_frames={n['min_frames']}, "
                    "floor at z = 0)")
    for c in ("clip", "path", "ingest", "frames", "mean cm", "max cm", "max frame", "skate cm/s", "penetr. cm",
              "limit viol."):
        t.add_column(c, justify="right")
    for r in sorted(rows, key=lambda r: (r["clip"], r["path"] != "direct")):
        if not r["frames"]:
            t.add_row(r["clip"], r["path"], f"refused: {r['ingest']}", "", "", "", "", "", "", "")
            continue
        t.add_row(r["clip"], r["path"], r["ingest"], str(r["frames"]), f"{r['mean_cm']:.1f}", f"{r['max_cm']:.1f}",
                  str(r["max_frame"]), f"{r['skate']:.1f}", f"{r['pen']:.2f}", str(r["limits"]))
    console.print(t)
    for path in ("direct", "Motion-X"):
        a = [r for r in rows if r["path"] == path and r["frames"]]
        if a:
            console.print(f"{path}: {len(a)} clips, mean MPKPE-aligned {np.mean([r['mean_cm'] for r in a]):.1f} cm, "
                          f"median worst keypoint {np.median([r['max_cm'] for r in a]):.1f} cm, max penetration "
                          f"{max(r['pen'] for r in a):.2f} cm, limit violations {sum(r['limits'] for r in a)}")
    why = ", ".join(f"{k}: {v}" for k, v in sorted(n["refused"].items())) or "none"
    console.print(f"Motion-X path: {n['in']} clips in, {n['ingested']} ingested ({n['clips']} shard clips), "
                  f"refused: {why}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m retarget.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("all", "deepmimic-motionx"), default="all",
                    help="deepmimic-motionx: only DeepMimic's clips, direct and through Motion-X files")
    args = ap.parse_args(argv)
    console = Console(width=150)
    robot = G1()
    if args.only == "deepmimic-motionx":
        deepmimic_motionx_table(console, robot, resolve_data_root(None) / "cache")
        return 0
    clips = _human_clips(DataLayout(resolve_data_root(None)))
    variants = [("1 iter, no lock (baseline)", RetargetConfig(iterations_per_frame=1, contact_lock=False)),
                ("2 iter, no lock", RetargetConfig(contact_lock=False)),
                ("2 iter + lock (default)", RetargetConfig()),
                ("4 iter + lock", RetargetConfig(iterations_per_frame=4)),
                ("8 iter + lock", RetargetConfig(iterations_per_frame=8)),
                ("2 iter + lock + smoothing", RetargetConfig(smooth_sigma_frames=1.0)),
                ("robot proportions (blend 1)", RetargetConfig(proportion_blend=1.0)),
                ("human proportions (blend 0)", RetargetConfig(proportion_blend=0.0))]
    _run(robot, clips[:1], RetargetConfig())  # warm-up: model building and imports
    results = [(name, _run(robot, clips, cfg)) for name, cfg in variants]
    base = results[0][1]
    t = Table(title=f"retarget benchmark: {len(clips)} synthetic sample clips, 1 core, pink IK")
    for c in ("variant", "frames/s", "x baseline", "MPKPE-al. cm", "target err cm", "skate cm/s", "penetr. cm"):
        t.add_column(c, justify="right")
    for name, r in results:
        t.add_row(name, f"{r['fps']:.0f}", f"{r['fps'] / base['fps']:.2f}", f"{100 * r['mpkpe']:.1f}",
                  f"{100 * r['target']:.1f}", f"{r['skate']:.1f}", f"{r['pen']:.2f}")
    console.print(t)
    console.print(PEERS)
    deepmimic_table(console, robot, resolve_data_root(None) / "cache")
    deepmimic_motionx_table(console, robot, resolve_data_root(None) / "cache")
    mocap = _holosoma_mocap(resolve_data_root(None) / "cache")
    if mocap:
        ht = Table(title="real human mocap (holosoma-retargeting climbing, first 20 s each, 120 Hz mocap taken at 30 Hz as holosoma does, floor at z = 0) -> G1")
        for c in ("sequence", "frames/s", "MPKPE-al. cm", "max cm", "skate cm/s", "source skate", "penetr. cm", "stable"):
            ht.add_column(c, justify="right")
        for name, joints in mocap:
            t0 = time.perf_counter()
            r = retarget_clip(robot, HOLOSOMA_MOCAP_JOINTS, joints, 30.0, RetargetConfig(floor_z_m=0.0))
            m = r.report["metrics"]
            ht.add_row(name, f"{len(joints) / (time.perf_counter() - t0):.0f}", f"{100 * m['mpkpe_aligned_mean_m']:.1f}",
                       f"{100 * m['mpkpe_aligned_max_m']:.1f}", f"{m['foot_skate_cm_s']:.1f}",
                       f"{human_foot_skate_cm_s(HOLOSOMA_MOCAP_JOINTS, joints, 30.0):.1f}",
                       f"{m['penetration_cm']:.2f}", str(r.report["stability"]["passed"]))
        console.print(ht)
        console.print("note: the climbs step onto boxes the G1 scene does not have, so skate/penetration here "
                      "are measured against the floor only")
    else:
        console.print("(holosoma-retargeting wheel unavailable: real human mocap skipped)")
    if REALDATA.is_dir():
        rt = Table(title="recovery of real G1 motions (../shared/realdata): robot keypoints -> IK -> robot")
        for c in ("motion", "keypoint error cm", "pose error cm (grounding shift removed)", "joint error rad"):
            rt.add_column(c, justify="right")
        for name, kp_err, pose_err, j_err in _real_recovery(robot):
            rt.add_row(name, f"{100 * kp_err:.2f}", f"{100 * pose_err:.2f}", f"{j_err:.3f}")
        console.print(rt)
    else:
        console.print("(../shared/realdata absent: real-motion recovery skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
