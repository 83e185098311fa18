"""Nearest-latent retrieval over the store, for debugging: which clips does the model think are alike?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout

SPACES = {"motion": "motion_latent", "text": "text_emb"}


class NearestError(RoboMirrorError):
    """The query cannot be answered (unknown clip, space without an encoder for this query, ...)."""


@dataclass(frozen=True)
class Neighbour:
    clip_id: str
    distance: float  # cosine distance, 0 = same direction
    text: str
    dataset: str
    stable: bool | None
    mpkpe_aligned_mean_m: float | None


def nearest(layout: DataLayout, clip: str | None = None, text: str | None = None, space: str = "motion",
            k: int = 5, where: str | None = None) -> list[Neighbour]:
    from latents.store import CLIPS, Store

    if space not in SPACES:
        raise NearestError(f"--space must be one of {sorted(SPACES)}, got {space!r}")
    if (clip is None) == (text is None):
        raise NearestError("give exactly one of --clip ID or --text \"...\"")
    if not (layout.store_dir).exists():
        raise NearestError(f"no store under {layout.root}; run `make latents` first")
    table = Store(layout.store_dir).table(CLIPS)
    col = SPACES[space]
    if clip is not None:
        safe = clip.replace("'", "")
        rows = table.search().where(f"clip_id = '{safe}'").limit(1).to_list()
        if not rows:
            raise NearestError(f"clip {clip!r} is not in the store; try: python -m catalog sql "
                               "\"SELECT clip_id, text FROM store_clips LIMIT 5\"")
        vec = np.asarray(rows[0][col], dtype=np.float32)
    else:
        if space != "text":
            raise NearestError("a text query needs --space text (text -> motion needs the DiT of a later issue)")
        from latents.text import embed_texts

        vec = embed_texts([text])[0]
    q = table.search(vec, vector_column_name=col).metric("cosine").limit(k + (clip is not None))
    if where:
        q = q.where(where, prefilter=True)
    out = []
    for r in q.to_list():
        if r["clip_id"] == clip:
            continue
        out.append(Neighbour(r["clip_id"], float(r["_distance"]), r.get("text") or "", r.get("dataset") or "",
                             r.get("stable"), r.get("mpkpe_aligned_mean_m")))
    return out[:k]
