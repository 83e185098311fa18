"""Scene clips at ingest (issue 22): holosoma's climbing layout read with its scene, the scene stored once
per sequence under its content digest and referenced by every clip; wrong units / up axis ledgered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ingest.config import IngestConfig
from ingest.failures import Reason, read_ledger
from ingest.pipeline import run_ingest
from ingest.sample.scenes import write_scene_root, write_scene_sequence
from ingest.scene import Scene, load_scene, scene_from_boxes, scene_from_heightfield, scenes_dir
from robomirror.paths import DataLayout
from robomirror.shards import published_shards
from robomirror.tario import read_tar

CFG = IngestConfig(clip_frames=60, stride_frames=60, min_frames=30)


def _metas(layout: DataLayout) -> list[dict]:
    out = []
    for shard in published_shards(layout.manifest("ingest", "holosoma_climb")):
        out += [json.loads(b) for n, b in read_tar(str(shard)) if n.endswith(".meta.json")]
    return out


@pytest.fixture(scope="module")
def scene_root(tmp_path_factory) -> DataLayout:
    src = tmp_path_factory.mktemp("scene_src")
    write_scene_root(src)
    write_scene_sequence(src, "stairs", "stairs_in_cm", scene_units="cm")
    write_scene_sequence(src, "stairs", "stairs_in_mm", scene_units="mm")  # rasterised: a 10^6 x grid (MemoryError)
    write_scene_sequence(src, "stairs", "stairs_y_up", scene_up="y")
    write_scene_sequence(src, "bench", "bench_y_up", scene_up="y")
    layout = DataLayout(tmp_path_factory.mktemp("scene_root"))
    run_ingest(layout, {"holosoma_climb": src}, CFG, executor="serial", progress=False)
    return layout


def test_scene_clips_reference_one_stored_scene_each(scene_root):
    metas = _metas(scene_root)
    by_seq: dict[str, set] = {}
    for m in metas:
        by_seq.setdefault(m["sequence"], set()).add(m["scene"]["scene_id"])
    assert set(by_seq) == {"scene_stairs", "scene_bench", "scene_slope"}
    assert all(len(ids) == 1 for ids in by_seq.values())  # every clip of a sequence refers to the same scene
    assert sum(len(m) for m in by_seq.values()) == 3
    stored = sorted(p.stem for p in scenes_dir(scene_root.root).glob("*.npz"))
    assert stored == sorted(i for ids in by_seq.values() for i in ids)  # stored once, named by content
    kinds = {m["sequence"]: m["scene"]["kind"] for m in metas}
    assert kinds == {"scene_stairs": "stairs", "scene_bench": "bench", "scene_slope": "slope"}
    for m in metas:
        assert (m["scene"]["units"], m["scene"]["up_axis"]) == ("m", "z")
        scene = load_scene(scene_root.root, m["scene"]["scene_id"])
        assert scene.ref()["bounds_m"] == m["scene"]["bounds_m"]


def test_wrong_units_and_up_axis_are_ledgered(scene_root):
    rows = {f.sequence: f for f in read_ledger(scene_root.ledger("ingest"))}
    assert rows["stairs_in_cm"].reason == Reason.SCENE_UNITS.value
    assert "centimetres" in rows["stairs_in_cm"].detail and "metres" in rows["stairs_in_cm"].detail
    assert rows["stairs_in_mm"].reason == Reason.SCENE_UNITS.value, rows["stairs_in_mm"].detail
    for seq in ("stairs_y_up", "bench_y_up"):
        assert rows[seq].reason == Reason.SCENE_UP_AXIS.value
        assert "y-up to z-up" in rows[seq].detail
    assert not {"stairs_in_cm", "stairs_in_mm", "stairs_y_up", "bench_y_up"} & {m["sequence"] for m in _metas(scene_root)}


def test_three_representations_agree_on_height():
    boxes = scene_from_boxes(np.array([[0.0, 0.0, 0.2, 0.5, 0.5, 0.2, 0.0]]))
    assert boxes.kind == "bench" or boxes.kind == "boxes"
    assert boxes.height_at(np.array([[0.0, 0.0], [2.0, 0.0]])) == pytest.approx([0.4, 0.0], abs=1e-6)
    h = np.zeros((41, 41))
    h[15:26, 15:26] = 0.4
    field = scene_from_heightfield(h, (-1.0, -1.0), 0.05)
    assert field.height_at(np.array([[0.0, 0.0], [0.9, 0.9]])) == pytest.approx([0.4, 0.0], abs=1e-6)
    again = Scene.from_npz(boxes.to_npz())
    assert again.scene_id == boxes.scene_id  # the id is the content: same bytes back


def test_real_holosoma_climb_reads_with_its_boxes():
    """The wheel's real climbing mocap (when data/cache holds it): scene read, checks pass."""
    import zipfile

    from ingest.scene_holosoma import discover_holosoma_climb, read_holosoma_climb
    wheels = sorted(Path("data/cache").glob("holosoma_retargeting-*.whl"))
    if not wheels:
        pytest.skip("holosoma-retargeting wheel not in data/cache")
    root = Path(pytest.importorskip("tempfile").mkdtemp())
    with zipfile.ZipFile(wheels[-1]) as z:
        for n in z.namelist():
            if "/demo_data/climb/mocap_climb_seq_1/" in n and not n.endswith("/"):
                z.extract(n, root)
    refs = discover_holosoma_climb(root / "holosoma_retargeting/demo_data/climb")
    seq = read_holosoma_climb(refs[0], IngestConfig())
    assert seq.scene is not None and seq.scene.bounds_m[1][2] == pytest.approx(0.95, abs=1e-3)
    assert seq.n_frames == pytest.approx(2422 / 4, abs=2)  # 120 Hz mocap at 30 Hz


def test_mesh_raster_matches_a_per_cell_reference():
    """The vectorised rasteriser (chunks of candidate cells) against the plain definition: for each cell
    centre, the highest triangle whose xy projection holds it; chunk sizes must not change a bit."""
    from ingest.scene import _raster_top

    rng = np.random.default_rng(3)
    v = np.concatenate([rng.uniform(-1, 1, (60, 2)), rng.uniform(0, 0.5, (60, 1))], 1)
    f = rng.integers(0, 60, (40, 3))
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    origin, shape, cell = np.array([-1.2, -1.2]), (25, 25), 0.1
    ref = np.zeros(shape)
    for i in range(shape[0]):
        for j in range(shape[1]):
            p = origin + np.array([j, i]) * cell
            for t in v[f]:
                (x0, y0, _), (x1, y1, _), (x2, y2, _) = t
                det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
                if abs(det) < 1e-12:
                    continue
                a = ((y1 - y2) * (p[0] - x2) + (x2 - x1) * (p[1] - y2)) / det
                b = ((y2 - y0) * (p[0] - x2) + (x0 - x2) * (p[1] - y2)) / det
                if min(a, b, 1 - a - b) >= -1e-9:
                    ref[i, j] = max(ref[i, j], a * t[0, 2] + b * t[1, 2] + (1 - a - b) * t[2, 2])
    for chunk in (1, 7, 1 << 22):
        np.testing.assert_allclose(_raster_top(v, f, origin, shape, cell, 0.0, chunk_cells=chunk), ref, atol=1e-12)
    assert (ref > 0).sum() > 50  # the mesh covers cells: the comparison is not of two empty grids
