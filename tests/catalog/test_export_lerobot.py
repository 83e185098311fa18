"""`python -m catalog export --format lerobot`: a LeRobotDataset v3.0 tree that lerobot itself loads.

The load runs in a venv of its own (requirements-lerobot.txt; lerobot's torch pin clashes with ours),
cached under data/cache by the file's hash; without a reachable registry the test skips with the reason.
Video: lerobot 0.4.4 decodes with torchcodec (not installable beside our torch) or else through
`torchvision.io.VideoReader`, which torchvision 0.29 removed; the load script puts back a VideoReader on
PyAV (what torchvision's "pyav" backend was) so lerobot's own seek / tolerance / frame-matching code runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from catalog.export_lerobot import VIDEO_KEY, ExportError, export_lerobot
from ingest.config import IngestConfig
from ingest.pipeline import run_ingest
from ingest.sample.corpus import SampleConfig, build_sample
from ingest.sample.formats import write_lafan1_root
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.paths import DataLayout
from tests.venv_cache import cached_venv

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-lerobot.txt"


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> DataLayout:
    from retarget.config import RetargetConfig
    from retarget.pipeline import run_retarget

    tmp = tmp_path_factory.mktemp("lerobot")
    write_lafan1_root(tmp / "lafan1", n_takes=2)
    layout = DataLayout(tmp / "data")
    run_ingest(layout, {"g1_csv": tmp / "lafan1"}, IngestConfig(), executor="serial", progress=False)
    run_retarget(layout, RetargetConfig(robot="g1_29dof"), executor="serial", progress=False)
    return layout


def test_export_writes_the_v3_tree_with_joint_names_tasks_and_provenance(layout, tmp_path):
    out = tmp_path / "ds"
    info = export_lerobot(layout, out)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30 and info["total_episodes"] == 2
    assert info["features"]["observation.state"]["names"] == list(G1_29DOF_JOINTS)
    assert info["features"]["action"]["names"] == list(G1_29DOF_JOINTS)
    assert json.loads((out / "meta" / "info.json").read_text()) == info
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    assert data.num_rows == info["total_frames"] == 90 + 150
    eps = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert {e["dataset"] for e in eps} == {"g1_csv"} and all(len(e["clip_id"]) == 20 for e in eps)
    assert sorted(e["length"] for e in eps) == [90, 150]
    tasks = pq.read_table(out / "meta" / "tasks.parquet").to_pandas()
    assert set(tasks.index) == {"walk"}  # the LAFAN1 take names
    assert not (tmp_path / "ds.partial").exists()
    with pytest.raises(ExportError, match="exists"):
        export_lerobot(layout, out)


def test_lance_storage_is_refused_with_the_reason(layout, tmp_path):
    with pytest.raises(ExportError, match="no Lance storage"):
        export_lerobot(layout, tmp_path / "ds", storage="lance")
    assert not (tmp_path / "ds").exists()


def _lerobot_venv() -> Path:
    lines = REQUIREMENTS.read_text().splitlines()
    pin = next(ln.split(":", 1)[1].split()[0] for ln in lines if ln.startswith("# no-deps:"))

    def torch_from_our_venv(venv: Path) -> None:
        # torch + torchvision from our own venv (a matched pair; see requirements-lerobot.txt), after lerobot's pins
        site = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p, "torchvision").is_dir())
        venv_site = next((venv / "lib").glob("python*/site-packages"))
        (venv_site / "zz_robomirror_torch.pth").write_text(str(site) + "\n")

    return cached_venv("lerobot-venv", sys.executable, REQUIREMENTS,
                       [["-r", str(REQUIREMENTS)], ["--no-deps", pin, "accelerate==1.11.0"]], torch_from_our_venv)


LOAD = """
import json, sys
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("robomirror/export", root=sys.argv[1])
item = ds[len(ds) - 1]
print(json.dumps({"frames": len(ds), "episodes": ds.num_episodes, "fps": ds.fps,
                  "names": ds.meta.features["observation.state"]["names"],
                  "state_shape": list(item["observation.state"].shape), "task": item["task"],
                  "last_state": item["observation.state"].tolist(), "last_episode": int(item["episode_index"])}))
"""


def test_lerobot_loads_the_export(layout, tmp_path):
    py = _lerobot_venv()
    out = tmp_path / "ds"
    info = export_lerobot(layout, out)
    r = subprocess.run([str(py), "-c", LOAD, str(out)], capture_output=True, text=True, timeout=300,
                       env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["frames"] == info["total_frames"] and got["episodes"] == 2 and got["fps"] == 30
    assert got["names"] == list(G1_29DOF_JOINTS) and got["state_shape"] == [29] and got["task"] == "walk"
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet").to_pylist()
    assert got["last_state"] == pytest.approx(data[-1]["observation.state"], abs=1e-6)


@pytest.fixture(scope="module")
def video_layout(tmp_path_factory) -> DataLayout:
    """One Motion-X++ sample sequence with its source video (3-4 s: one clip), ingested and retargeted."""
    from retarget.config import RetargetConfig
    from retarget.pipeline import run_retarget

    tmp = tmp_path_factory.mktemp("lerobot_video")
    sample = build_sample(tmp / "sample", SampleConfig(seed=0, n_motionx=1, n_nymeria=0, n_nymeria_no_video=0,
                                                       min_seconds=3.0, max_seconds=4.0), progress=False)
    layout = DataLayout(tmp / "data")
    run_ingest(layout, {"motionx": sample["motionx"]}, IngestConfig(), executor="serial", progress=False)
    run_retarget(layout, RetargetConfig(robot="g1_29dof"), executor="serial", progress=False)
    return layout


LOAD_VIDEO = """
import json, sys
import av, numpy as np, torch, torchvision.io

class VideoReader:  # torchvision's removed pyav VideoReader: seek to the key frame before, then frames in order
    def __init__(self, path, stream="video"):
        self.container = av.open(path)
        self.stream = self.container.streams.video[0]
        self._seek_s = 0.0
    def seek(self, t_s, keyframes_only=True):
        self._seek_s = t_s
        self.container.seek(int(t_s / self.stream.time_base), stream=self.stream, backward=True, any_frame=False)
        return self
    def __iter__(self):
        for f in self.container.decode(self.stream):
            yield {"data": torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1), "pts": float(f.time)}

if not hasattr(torchvision.io, "VideoReader"):
    torchvision.io.VideoReader = VideoReader
from lerobot.datasets.lerobot_dataset import LeRobotDataset
ds = LeRobotDataset("robomirror/export", root=sys.argv[1], video_backend="pyav")
key = sys.argv[2]
out = {"frames": len(ds), "video_keys": list(ds.meta.video_keys), "fps": ds.fps, "items": {}}
pixels = {}
for i in (0, len(ds) // 2, len(ds) - 1):
    v = ds[i][key]
    out["items"][i] = {"shape": list(v.shape), "min": float(v.min()), "max": float(v.max())}
    pixels[f"frame_{i}"] = v.numpy()
np.savez(sys.argv[3], **pixels)
print(json.dumps(out))
"""


def test_lerobot_decodes_the_exported_source_video(video_layout, tmp_path):
    """The Motion-X clip's video, re-timed to the motion rate: lerobot finds a frame at every data timestamp
    (within its 1e-4 s tolerance) and it is the frame we wrote."""
    from ingest.video import decode_mp4_bytes

    py = _lerobot_venv()
    out = tmp_path / "ds"
    info = export_lerobot(video_layout, out)
    assert info["features"][VIDEO_KEY]["dtype"] == "video" and info["video_path"]
    h, w = info["features"][VIDEO_KEY]["shape"][:2]
    r = subprocess.run([str(py), "-c", LOAD_VIDEO, str(out), VIDEO_KEY, str(tmp_path / "frames.npz")],
                       capture_output=True, text=True, timeout=300,
                       env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["video_keys"] == [VIDEO_KEY] and got["frames"] == info["total_frames"] and got["fps"] == info["fps"]
    mp4 = next((out / "videos" / VIDEO_KEY).rglob("*.mp4")).read_bytes()
    frames, _, _ = decode_mp4_bytes(mp4)
    assert len(frames) == info["total_frames"]  # one video frame per motion frame
    pixels = np.load(tmp_path / "frames.npz")
    for i, item in got["items"].items():
        assert item["shape"] == [3, h, w] and 0.0 <= item["min"] < item["max"] <= 1.0  # decoded, not blank
        theirs = pixels[f"frame_{i}"].transpose(1, 2, 0) * 255.0
        np.testing.assert_allclose(theirs, frames[int(i)], atol=1.0)  # pixel for pixel the frame at that time
