"""BONES-SEED's G1 joint trajectories as ingest sources (robot motions, through ingest/g1_csv.py's path).

Layout, from the dataset card (huggingface bones-studio/seed), the seed-viewer backend
(`bones-studio/seed-viewer` `backend/src/globals.py`, `storage_local/_g1csv.py`) and the public loaders
(NVlabs ProtoMotions `data/scripts/convert_g1_csv_to_proto.py`, GR00T/SONIC's `load_bones_csv`):

  <root>/g1/csv/<take date>/<filename>.csv     one motion per file, 120 fps
  <root>/metadata/*.parquet                     one row per motion, keyed by `filename` (the CSV's stem;
                                                `move_g1_path` = g1/csv/<date>/<filename>.csv)
  <root>/metadata/*temporal_labels*.jsonl       {"filename", "events": [{start_time, end_time, description}]}
  <root>/g1.tar.gz                              the download, before `tar -xzf` (a licence-gated archive)

**CSV**: a header row `Frame, root_translateX, root_translateY, root_translateZ, root_rotateX,
root_rotateY, root_rotateZ, <joint>_dof x 29`. Root position in centimetres; root orientation as
**extrinsic xyz** Euler angles in degrees, R = Rz(z) Ry(y) Rx(x) (ProtoMotions: "the confirmed correct
convention ... is 'xyz' (extrinsic XYZ)", scipy `from_euler("xyz")`, as GR00T's loader too); joint angles
in degrees. Columns are taken **by name**: `<joint>_dof` for every joint of `G1_29DOF_JOINTS`; a file
missing one, or with a joint the contract lacks, is `bad_columns` with "Missing: ... Extra: ...".
`Frame` must count up by one (the 120 Hz clock); it is resampled to the clip rate like every source.

**Texts**: the metadata row's `content_natural_desc_1..4`, `content_short_description`(`_2`) and
`content_technical_description` (what seed-viewer shows as a motion's descriptions), each whole-motion;
the temporal labels' events as spans [s] on the motion clock (`temporal_segment`). A motion without a
metadata row is kept without texts (the meta says so). A metadata file that is a Git LFS pointer or an
HTML page is `not_downloaded` for every motion, naming the file; an unextracted `g1.tar.gz` is one ledger
row saying to extract it.

**SOMA BVH** (human motion, `ingest/bvh.py` parses it): `<root>/soma_uniform/bvh/<take date>/<filename>.bvh`,
the same motions on one common SOMA skeleton (`move_soma_uniform_path` in the metadata; the SOMA example's
`parse_bvh_motion`, NVlabs' BVH -> SMPL converter). 77 joints below `Root`, y-up, centimetres, Frame Time
0.008333 s (120 fps; snapped to the integer rate it rounds to). The body joints map onto SMPL's 22 by
`ingest.skeletons.SMPL_FROM_SOMA`, the up axis is decided once per sequence (`decide_up_axis`, +y
documented), and the clip's texts are the metadata row of the same `filename`: a BVH and the G1 CSV of
one motion share their descriptions. `soma_proportional/` (the same motions on each actor's proportions)
is not read: one copy of each motion. A BVH sequence's subset is `soma_uniform_<date>`, so it never
collides with the G1 CSV of the same motion (subset `<date>`).

Both metadata files are source files of every motion (hashed into its staging digest, so a new metadata
release rebuilds the texts); each worker reads them once (an index cached per file identity).
"""

from __future__ import annotations

import csv
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from ingest.bvh import forward_kinematics, read_bvh
from ingest.config import IngestConfig
from ingest.failures import Reason
from ingest.g1_csv import G1Trajectory, check_not_gated, robot_sequence
from ingest.resample import interp_linear, uniform_index
from ingest.sequence import HumanSequence, SourceRef, TextSpan
from ingest.skeletons import SMPL_FROM_SOMA, SMPLX_HANDS_FROM_SOMA
from ingest.up_axis import decide_up_axis
from robomirror.errors import SourceError
from robomirror.g1_contract import G1_29DOF_JOINTS
from robomirror.rotations import matrix_to_quat_wxyz

BONES_SEED_FPS = 120.0  # the dataset card: "~288 hours (@ 120 fps)"; seed-viewer's G1 player default
FRAME_COLUMN = "Frame"
ROOT_POS_COLUMNS = ("root_translateX", "root_translateY", "root_translateZ")  # [cm]
ROOT_ROT_COLUMNS = ("root_rotateX", "root_rotateY", "root_rotateZ")  # [deg], extrinsic xyz
JOINT_SUFFIX = "_dof"
JOINT_COLUMNS = tuple(j + JOINT_SUFFIX for j in G1_29DOF_JOINTS)  # [deg]
COLUMNS = (FRAME_COLUMN, *ROOT_POS_COLUMNS, *ROOT_ROT_COLUMNS, *JOINT_COLUMNS)
CM_PER_M = 100.0
TEXT_COLUMNS = ("content_natural_desc_1", "content_natural_desc_2", "content_natural_desc_3",
                "content_natural_desc_4", "content_short_description", "content_short_description_2",
                "content_technical_description")
NOTE_COLUMNS = ("take_date", "move_name", "category", "is_mirror", "actor_uid")  # kept in the clip meta
SEGMENT_KIND = "temporal_segment"
ARCHIVE = "g1.tar.gz"
SOMA_FOLDER = "soma_uniform"  # <root>/soma_uniform/bvh/<date>/<filename>.bvh
SOMA_ARCHIVES = ("soma_uniform.tar", "soma_uniform.tar.gz")  # the download, before extraction
SOMA_LAYOUT = "bones_seed_soma_bvh"
SOMA_UP_AXIS = "+y"  # NVlabs' converter: "up": (0, 1, 0) for the SOMA skeleton
SOMA_M_PER_UNIT = 0.01  # centimetres
LEG_M = (0.4, 1.4)  # hip -> knee -> ankle [m] of a human body: outside it, the units are not centimetres


def euler_xyz_extrinsic_deg_to_quat_wxyz(euler_deg: np.ndarray) -> np.ndarray:
    """(T, 3) [rotX, rotY, rotZ] degrees, extrinsic xyz (R = Rz Ry Rx) -> (T, 4) wxyz."""
    x, y, z = np.deg2rad(np.asarray(euler_deg, dtype=np.float64)).T
    cx, sx, cy, sy, cz, sz = np.cos(x), np.sin(x), np.cos(y), np.sin(y), np.cos(z), np.sin(z)
    m = np.stack([
        np.stack([cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx], -1),
        np.stack([sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx], -1),
        np.stack([-sy, cy * sx, cy * cx], -1),
    ], -2)
    return matrix_to_quat_wxyz(m)


def read_bones_seed_csv(path: str) -> G1Trajectory:
    """One BONES-SEED G1 CSV -> trajectory in our convention (m, wxyz, rad, G1_29DOF_JOINTS order)."""
    check_not_gated(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(v.strip() for v in r)]
    except UnicodeDecodeError as e:
        raise SourceError(Reason.BAD_CSV, path, f"not a UTF-8 text file: {e}") from e
    if not rows:
        raise SourceError(Reason.EMPTY, path, "no header and no rows")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    extra = [h for h in header if h not in COLUMNS]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if missing or extra or dupes:
        raise SourceError(Reason.BAD_COLUMNS, path,
                          f"BONES-SEED G1 CSV columns are Frame, root_translateX/Y/Z, root_rotateX/Y/Z and "
                          f"<joint>_dof for the {len(G1_29DOF_JOINTS)} G1 joints; Missing: {missing or 'none'}; "
                          f"Extra: {extra or 'none'}; Duplicated: {dupes or 'none'}")
    if len(rows) < 2:
        raise SourceError(Reason.EMPTY, path, "a header and no frames")
    widths = sorted({len(r) for r in rows[1:]} - {len(header)})
    if widths:
        raise SourceError(Reason.BAD_COLUMNS, path, f"header has {len(header)} columns, some rows have {widths}")
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64)
    except ValueError as e:
        raise SourceError(Reason.BAD_CSV, path, f"a value is not a number: {e}") from e
    if not np.isfinite(data).all():
        bad = sorted({header[j] for j in np.argwhere(~np.isfinite(data))[:, 1]})
        raise SourceError(Reason.NON_FINITE, path, f"NaN or inf in columns {bad}")
    col = {h: data[:, i] for i, h in enumerate(header)}
    frame = col[FRAME_COLUMN]
    steps = np.unique(np.diff(frame))
    if len(frame) > 1 and not np.array_equal(steps, [1.0]):
        raise SourceError(Reason.NON_MONOTONIC_TIME, path,
                          f"Frame must count up by 1 (the {BONES_SEED_FPS:g} fps clock); found steps {steps[:5].tolist()}")
    root = np.stack([col[c] for c in ROOT_POS_COLUMNS], -1) / CM_PER_M
    quat = euler_xyz_extrinsic_deg_to_quat_wxyz(np.stack([col[c] for c in ROOT_ROT_COLUMNS], -1))
    joints = np.deg2rad(np.stack([col[c] for c in JOINT_COLUMNS], -1))
    return G1Trajectory(BONES_SEED_FPS, root, quat, joints)


def _csv_folder(root: Path) -> Path | None:
    for cand in (root / "g1" / "csv", root / "csv"):
        if cand.is_dir():
            return cand
    return None


def _metadata_files(root: Path) -> list[tuple[str, str]]:
    """(role, path) of the metadata table and the temporal labels, where present (seed-viewer's choice:
    the first .parquet and the first .jsonl in sorted order; a CSV export of the table also reads)."""
    folder = root / "metadata"
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("._"))
    out = []
    table = next((n for n in names if n.endswith(".parquet")), None) or next(
        (n for n in names if n.endswith(".csv")), None)
    if table:
        out.append(("metadata", str(folder / table)))
    labels = next((n for n in names if n.endswith(".jsonl")), None)
    if labels:
        out.append(("temporal_labels", str(folder / labels)))
    return out


def _dated_files(folder: Path, root: Path, suffix: str, subset_prefix: str, layout: str,
                 meta: tuple) -> list[SourceRef]:
    """`<folder>/<take date>/*<suffix>` -> one SourceRef each; anything else there is one ledger row."""
    refs = []
    for date_dir in sorted(folder.iterdir()):
        if date_dir.name.startswith("."):
            continue
        if not date_dir.is_dir():
            refs.append(SourceRef.unusable("bones_seed", date_dir, root, Reason.NOT_A_SOURCE.value,
                                           f"expected a <take date> folder of {suffix} files"))
            continue
        for p in sorted(date_dir.iterdir()):
            if p.name.startswith("."):
                continue
            if not p.is_file() or p.suffix.lower() != suffix:
                refs.append(SourceRef.unusable("bones_seed", p, root, Reason.NOT_A_SOURCE.value,
                                               f"expected a {suffix} file of {layout}"))
                continue
            refs.append(SourceRef("bones_seed", subset_prefix + date_dir.name, p.stem, str(root),
                                  (("motion", str(p)), *meta), layout))
    return refs


def discover_bones_seed(root: Path) -> list[SourceRef]:
    """`<root>/g1/csv/<date>/*.csv` (G1 motions) and `<root>/soma_uniform/bvh/<date>/*.bvh` (human motions),
    with the metadata files of `<root>/metadata/` as every motion's sources."""
    folder, soma = _csv_folder(root), root / SOMA_FOLDER / "bvh"
    meta = tuple(_metadata_files(root))
    refs = []
    for archive, extracted, unpacks in ((root / ARCHIVE, folder is not None, "g1/csv/<date>/*.csv"),
                                        *((root / a, soma.is_dir(), f"{SOMA_FOLDER}/bvh/<date>/*.bvh")
                                          for a in SOMA_ARCHIVES)):
        if archive.is_file() and not extracted:
            flag = "-xzf" if archive.name.endswith(".gz") else "-xf"
            refs.append(SourceRef.unusable("bones_seed", archive, root, Reason.NOT_A_SOURCE.value,
                                           f"{archive.name} is not extracted: run `tar {flag} {archive} -C {root}` "
                                           f"(it unpacks to {unpacks})"))
    if folder is None and not soma.is_dir() and not refs:
        return [SourceRef.unusable("bones_seed", root, root, Reason.NOT_A_SOURCE.value,
                                   f"no g1/csv/<date>/*.csv and no {SOMA_FOLDER}/bvh/<date>/*.bvh under this "
                                   "BONES-SEED root")]
    if folder is not None:
        refs += _dated_files(folder, root, ".csv", "", "bones_seed_g1_csv", meta)
    if soma.is_dir():
        refs += _dated_files(soma, root, ".bvh", f"{SOMA_FOLDER}_", SOMA_LAYOUT, meta)
    return refs


def _identity(path: str) -> tuple[str, int, int]:
    st = Path(path).stat()
    return path, st.st_size, st.st_mtime_ns


@lru_cache(maxsize=4)
def _metadata_index(path: str, size: int, mtime_ns: int) -> dict[str, dict]:
    """filename -> {column: value} for the text and note columns (read once per worker and file version)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    check_not_gated(path)
    try:
        if path.endswith(".parquet"):
            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[c for c in ("filename", *TEXT_COLUMNS, *NOTE_COLUMNS) if c in names])
        else:
            table = pacsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise SourceError(Reason.BAD_CSV, path, f"the BONES-SEED metadata table does not read: {e}") from e
    if "filename" not in table.column_names:
        raise SourceError(Reason.BAD_COLUMNS, path,
                          f"the metadata table has no `filename` column (its key); found {table.column_names[:12]}")
    keep = [c for c in table.column_names if c in ("filename", *TEXT_COLUMNS, *NOTE_COLUMNS)]
    return {r["filename"]: r for r in table.select(keep).to_pylist()}


@lru_cache(maxsize=4)
def _temporal_index(path: str, size: int, mtime_ns: int) -> dict[str, list[dict]]:
    check_not_gated(path)
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                out[entry["filename"]] = list(entry.get("events") or ())
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise SourceError(Reason.BAD_CSV, path, f"line {n} is not a temporal-label record: {e}") from e
    return out


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v).strip() != ""


def motion_texts(ref: SourceRef) -> tuple[list[TextSpan], dict]:
    """The motion's descriptions and temporal segments, and the metadata facts for its meta."""
    files = dict(ref.files)
    texts: list[TextSpan] = []
    notes: dict = {}
    if "metadata" in files:
        row = _metadata_index(*_identity(files["metadata"])).get(ref.sequence)
        if row is None:
            notes["metadata"] = f"no row for {ref.sequence!r} in {Path(files['metadata']).name}"
        else:
            texts += [TextSpan(c.removeprefix("content_"), str(row[c]).strip()) for c in TEXT_COLUMNS
                      if _present(row.get(c))]
            notes.update({f"bones_seed_{c}": row[c] for c in NOTE_COLUMNS if _present(row.get(c))})
    else:
        notes["metadata"] = "no metadata/*.parquet under the root: no descriptions"
    if "temporal_labels" in files:
        for ev in _temporal_index(*_identity(files["temporal_labels"])).get(ref.sequence, ()):
            if _present(ev.get("description")):
                texts.append(TextSpan(SEGMENT_KIND, str(ev["description"]).strip(),
                                      float(ev["start_time"]), float(ev["end_time"])))
    return texts, notes


def read_bones_seed(ref: SourceRef, cfg: IngestConfig) -> HumanSequence:
    if ref.layout == SOMA_LAYOUT:
        return read_soma_bvh(ref, cfg)
    path = dict(ref.files)["motion"]
    traj = read_bones_seed_csv(path)
    texts, notes = motion_texts(ref)
    return robot_sequence(ref, traj, texts, cfg, path, {"source_layout": "bones_seed_g1_csv", **notes})


def snap_fps(fps: float) -> float:
    """BONES-SEED's Frame Time 0.008333 s is 120.0048 fps: the rate it stands for is the integer one."""
    return float(round(fps)) if abs(fps - round(fps)) < 0.01 else fps


def soma_joints(path: str) -> tuple[tuple[str, ...], np.ndarray, float, dict]:
    """A SOMA BVH -> (SMPL joint names, (T, J, 3) positions [m] in the file's frame, fps, notes)."""
    m = read_bvh(path)
    missing = [n for n in SMPL_FROM_SOMA if n not in m.names]
    if missing:
        raise SourceError(Reason.BAD_COLUMNS, path,
                          f"not the SOMA skeleton: Missing joints: {missing}; found {list(m.names[:12])}"
                          f"{'...' if len(m.names) > 12 else ''} (ingest.skeletons.SMPL_FROM_SOMA lists the names)")
    pos, _ = forward_kinematics(m)
    keep = {**SMPL_FROM_SOMA, **{k: v for k, v in SMPLX_HANDS_FROM_SOMA.items() if k in m.names}}
    joints = pos[:, [m.names.index(n) for n in keep]] * SOMA_M_PER_UNIT
    names = tuple(keep.values())
    leg = float(np.median(sum(np.linalg.norm(joints[:, names.index(f"left_{a}")] - joints[:, names.index(f"left_{b}")],
                                             axis=-1) for a, b in (("hip", "knee"), ("knee", "ankle")))))
    if not LEG_M[0] <= leg <= LEG_M[1]:
        raise SourceError(Reason.BAD_SHAPE, path,
                          f"hip -> knee -> ankle is {leg:.3g} m read as centimetres; a body's is {LEG_M[0]}-{LEG_M[1]} m: "
                          "the file is not in SOMA's centimetres")
    fps = snap_fps(1.0 / m.frame_time_s)
    notes = {"bvh_frame_time_s": m.frame_time_s, "bvh_joints": len(m.names),
             "skeleton_map": "ingest.skeletons.SMPL_FROM_SOMA (SOMA BVH -> SMPL joint names)"}
    return names, joints, fps, notes


def read_soma_bvh(ref: SourceRef, cfg: IngestConfig) -> HumanSequence:
    """SOMA BVH -> SMPL-named joint positions, z-up on the floor, at the clip rate, with the motion's texts."""
    from ingest.motionx import zup_rotation

    path = dict(ref.files)["motion"]
    names, joints_src, fps, notes = soma_joints(path)
    decision = decide_up_axis(joints_src, names, fps, SOMA_UP_AXIS, path)
    joints = joints_src @ zup_rotation(decision.axis).T - [0.0, 0.0, decision.floor_m]
    _, idx = uniform_index(np.arange(len(joints)) / fps, cfg.fps)
    texts, meta_notes = motion_texts(ref)
    return HumanSequence(ref=ref, view="motion_only", fps=cfg.fps, t0_s=0.0, joint_names=names,
                         joint_pos_w=interp_linear(joints, idx).astype(np.float32), params={},
                         source_frame_index=idx, texts=texts, video=None, body_model="none",
                         body_source="soma_bvh", source_fps=fps,
                         notes={"source_layout": SOMA_LAYOUT, **notes, **decision.notes(),
                                "floor_shift_m": round(-decision.floor_m, 4),
                                **({"up_axis_warning": f"up axis {decision.axis} differs from SOMA's {SOMA_UP_AXIS}"}
                                   if decision.differs_from_subset else {}), **meta_notes})
