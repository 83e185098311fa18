"""Motion features streamed from the published retarget shards, never all in memory.

The clip index holds, per clip, where its `robot.npz` member lies in which shard (byte offset and
size, read from the tar headers only). Feature statistics are one streaming pass of sums; the VAE
trains on a map-style dataset that reads one member's bytes per item. So a full Motion-X + Nymeria
build needs memory for a batch, not for the corpus.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from latents.features import motion_features
from robomirror.shards import manifest_shards
from robomirror.tario import member_spans


@dataclass(frozen=True)
class ClipRef:
    clip_id: str
    shard: str  # path of the retarget shard
    offset: int  # byte offset of robot.npz's data in the shard
    size: int


def clip_index(root: Path) -> list[ClipRef]:
    """Every published retargeted clip, in manifest order (the committed generation's shards)."""
    out = []
    for m in sorted(Path(root).glob("shards/retarget/*/manifest.parquet")):
        order = pq.read_table(m, columns=["clip_id"]).column(0).to_pylist()
        where = {}
        for shard in manifest_shards(m):
            for name, (off, size) in member_spans(str(m.parent / shard)).items():
                if name.endswith(".robot.npz"):
                    where[name.split(".", 1)[0]] = ClipRef(name.split(".", 1)[0], str(m.parent / shard), off, size)
        out.extend(where[c] for c in order if c in where)
    return out


def read_motion(ref: ClipRef) -> dict[str, np.ndarray]:
    with open(ref.shard, "rb") as f:
        f.seek(ref.offset)
        data = f.read(ref.size)
    return dict(np.load(io.BytesIO(data), allow_pickle=False))


def read_features(ref: ClipRef) -> np.ndarray:
    return motion_features(read_motion(ref))


def feature_stats(refs: list[ClipRef]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (+1e-3) over every frame of every clip, in one streaming pass."""
    total = sq = None
    n = 0
    for ref in refs:
        f = read_features(ref).astype(np.float64)
        total = f.sum(0) if total is None else total + f.sum(0)
        sq = (f ** 2).sum(0) if sq is None else sq + (f ** 2).sum(0)
        n += len(f)
    mean = total / n
    return mean.astype(np.float32), (np.sqrt(np.maximum(sq / n - mean ** 2, 0.0)) + 1e-3).astype(np.float32)


class FeatureDataset(torch.utils.data.Dataset):
    """Normalised, padded clip features: item = (x (clip_frames, F) float32, mask (clip_frames,) bool).
    `source` is a list of ClipRef (read from the shards per item) or of in-memory feature arrays."""

    def __init__(self, source: list, mean: np.ndarray, std: np.ndarray, clip_frames: int) -> None:
        self.source, self.mean, self.std, self.clip_frames = source, mean, std, clip_frames

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.source[i]
        f = read_features(s) if isinstance(s, ClipRef) else s
        x = np.zeros((self.clip_frames, f.shape[1]), np.float32)
        n = min(len(f), self.clip_frames)
        x[:n] = (f[:n] - self.mean) / self.std
        mask = np.zeros(self.clip_frames, bool)
        mask[:n] = True
        return torch.from_numpy(x), torch.from_numpy(mask)
