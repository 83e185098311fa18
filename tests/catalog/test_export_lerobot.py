"""`python -m catalog export --format lerobot`: a LeRobotDataset v3.0 tree that lerobot itself loads.

The load runs in a venv of its own (requirements-lerobot.txt; lerobot's torch pin clashes with ours),
cached under data/cache by the file's hash; without a reachable registry the test skips with the reason."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog.export_lerobot import ExportError, export_lerobot
from ingest.config import IngestConfig
from ingest.pipeline import run_ingest
from ingest.sample.formats import write_lafan1_root
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.paths import DataLayout

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
    key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = ROOT / "data" / "cache" / f"lerobot-venv-py{sys.version_info[0]}.{sys.version_info[1]}-{key}"
    py = venv / "bin" / "python"
    if (venv / ".installed").is_file():
        return py
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    for args in (["-r", str(REQUIREMENTS)], ["--no-deps", pin, "accelerate==1.11.0"]):
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                           capture_output=True, text=True, timeout=1500)
        if r.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"the lerobot venv did not install (no registry reachable?): {r.stderr.strip().splitlines()[-1:]}")
    # torch + torchvision from our own venv (a matched pair; see requirements-lerobot.txt), after lerobot's pins
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p, "torchvision").is_dir())
    venv_site = next((venv / "lib").glob("python*/site-packages"))
    (venv_site / "zz_robomirror_torch.pth").write_text(str(site) + "\n")
    (venv / ".installed").touch()
    return py


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
