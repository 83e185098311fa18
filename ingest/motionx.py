"""Reader for Motion-X (SMPL-X, 322 columns per frame, 30 fps, y-up).

On-disk layout (the real release and the generated sample alike):
```
<root>/motion_data/smplx_322/<subset>/<name>.npy   float32 (T, 322)
<root>/texts/semantic_labels/<subset>/<name>.txt   one label per line
<root>/video/<subset>/<name>.mp4                   third-person video
```
`<name>` may contain sub-folders (some Motion-X subsets nest them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest.body_model import BodyModel
from ingest.checks import check_array, load_npy
from ingest.failures import Reason
from ingest.sequence import HumanSequence, SourceRef, TextSpan
from ingest.video import VideoSource
from robomirror.errors import SourceError
from robomirror.rotations import R_ZUP_FROM_YUP, axis_angle_to_matrix, matrix_to_axis_angle

MOTIONX_FPS = 30.0
MOTIONX_WIDTH = 322
# Column slices of one smplx_322 frame, as documented by Motion-X.
MOTIONX_COLUMNS: dict[str, tuple[int, int]] = {
    "root_orient": (0, 3), "pose_body": (3, 66), "pose_hand": (66, 156), "pose_jaw": (156, 159),
    "face_expr": (159, 209), "face_shape": (209, 309), "trans": (309, 312), "betas": (312, 322),
}


def discover_motionx(root: Path) -> list[SourceRef]:
    root = Path(root).resolve()  # recorded paths do not depend on the working directory
    motion_dir = root / "motion_data" / "smplx_322"
    refs = []
    for npy in sorted(motion_dir.rglob("*.npy")):
        rel = npy.relative_to(motion_dir)
        subset, name = rel.parts[0], str(Path(*rel.parts[1:]).with_suffix(""))
        files = (
            ("motion", str(npy)),
            ("text", str(root / "texts" / "semantic_labels" / subset / f"{name}.txt")),
            ("video", str(root / "video" / subset / f"{name}.mp4")),
        )
        refs.append(SourceRef("motionx", subset, name, str(root), files))
    return refs


def split_columns(motion: np.ndarray) -> dict[str, np.ndarray]:
    """(T, 322) -> named parameter arrays (views, source frame)."""
    return {k: motion[:, a:b] for k, (a, b) in MOTIONX_COLUMNS.items()}


def yup_params_to_zup(params: dict[str, np.ndarray], pelvis_rest: np.ndarray) -> dict[str, np.ndarray]:
    """Rotate root orientation and translation from y-up to z-up.

    The body model rotates about the pelvis rest position J0 and adds `trans`, so
    `trans_zup = R (trans + J0) - J0` keeps every joint at `R @ joint_yup`.
    pelvis_rest: (T, 3) J0 of the body model for each frame's betas.
    """
    out = dict(params)
    out["root_orient"] = matrix_to_axis_angle(R_ZUP_FROM_YUP @ axis_angle_to_matrix(params["root_orient"]))
    out["trans"] = (params["trans"] + pelvis_rest) @ R_ZUP_FROM_YUP.T - pelvis_rest
    return out


def read_texts(path: str) -> list[TextSpan]:
    p = Path(path)
    if not p.is_file():
        raise SourceError(Reason.MISSING_TEXT, path, "no semantic label file for this motion")
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as e:
        raise SourceError(Reason.MISSING_TEXT, path, f"label file is not UTF-8: {e}") from e
    texts = [TextSpan("semantic_label", ln) for ln in lines if ln]
    if not texts:
        raise SourceError(Reason.MISSING_TEXT, path, "label file is empty")
    return texts


def read_motionx(ref: SourceRef, body: BodyModel) -> HumanSequence:
    files = dict(ref.files)
    path = files["motion"]
    raw = load_npy(path)
    motion = check_array(raw, path, "smplx_322", width=(MOTIONX_WIDTH,))
    texts = read_texts(files["text"])
    if not Path(files["video"]).is_file():
        raise SourceError(Reason.MISSING_FILE, files["video"], "no video for this motion")
    p = split_columns(motion)
    try:
        joints_yup = body.joints(p["root_orient"], p["pose_body"], p["trans"], p["betas"],
                                 hand_pose=p["pose_hand"], jaw_pose=p["pose_jaw"])
        t = len(motion)
        zero = np.zeros((t, 3))
        pelvis_rest = body.joints(zero, np.zeros((t, 63)), zero, p["betas"])[:, 0]
    except Exception as e:  # the body model is a third-party boundary
        raise SourceError(Reason.BAD_BODY, path, f"{body.name} failed: {type(e).__name__}: {e}") from e
    params = yup_params_to_zup(p, pelvis_rest)
    return HumanSequence(
        ref=ref, view="third_person", fps=MOTIONX_FPS, t0_s=0.0,
        joint_names=tuple(body.joint_names),
        joint_pos_w=(joints_yup @ R_ZUP_FROM_YUP.T).astype(np.float32),
        params={k: v.astype(np.float32) for k, v in params.items()},
        source_frame_index=np.arange(len(motion), dtype=np.float64),
        texts=texts, video=VideoSource(files["video"], "mp4"),
        body_model=body.name, body_source="smplx_322", source_fps=MOTIONX_FPS,
    )
