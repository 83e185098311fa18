"""Training data from the store: the split by sequence, a pinned store version, a map-style dataset.

- **Split**: clips of one sequence (dataset/subset/sequence) are never on both sides. Sequences are
  ranked by sha256(seed, key) and the first round(test_fraction * n) are test. The split is written
  to the store's `splits` table under an id that hashes the seed, the fraction and the sequence set,
  so every consumer (DiT, evaluator, policy, report) reads the same one, and a new seed, fraction or
  corpus is a new id, never an edit.
- **Pinned reads**: a run tags the tables it reads (`run-<id>`) and opens them at those versions, so a
  store that grows while it trains does not change what it trains on. The versions are recorded.
- **Dataset**: map-style over the clips of one side that have video tokens, each item read with
  Lance `take()`; token tables hold list<fixed_size_list<float16>>, converted here from the Arrow
  buffers (lance's own torch loader does not convert them). Lance is not fork-safe: loaders spawn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import torch

from latents.store import CLIPS, MOTION_TOKENS, VIDEO_TOKENS
from robomirror import FORMAT_VERSION
from robomirror.errors import ConfigError, RoboMirrorError

SPLITS = "splits"
SPLIT_SCHEMA = pa.schema([("split_id", pa.string()), ("clip_id", pa.string()), ("sequence_key", pa.string()),
                          ("side", pa.string()), ("seed", pa.int64()), ("test_fraction", pa.float64()),
                          ("format_version", pa.int32())])
READ_TABLES = (CLIPS, MOTION_TOKENS, VIDEO_TOKENS)


class DataError(RoboMirrorError):
    """The store cannot feed training as asked (no split, no clips, mixed models)."""


@dataclass(frozen=True)
class SplitConfig:
    seed: int = 0  # the ranking of sequences
    test_fraction: float = 0.2  # the paper's 8:2

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


@dataclass(frozen=True)
class Split:
    split_id: str
    side: dict[str, str]  # clip_id -> "train" | "test"

    def clips(self, side: str) -> list[str]:
        return sorted(c for c, s in self.side.items() if s == side)


def sequence_key(row: dict) -> str:
    return f"{row['dataset']}/{row['subset']}/{row['sequence']}"


def compute_split(rows: list[dict], cfg: SplitConfig) -> Split:
    """rows: clip rows with clip_id, dataset, subset, sequence, view -> the split (pure: no store).

    Stratified by (dataset, view), as the paper reports Motion-X and Nymeria apart: within each
    group, sequences are ranked by sha256(seed, key) and the first round(fraction * n) (at least one
    when the group has two or more) are test. So a small corpus still has egocentric and third-person
    clips on both sides, and motion-only clips (no video) never take the place of video ones."""
    keys = sorted({sequence_key(r) for r in rows})
    if len(keys) < 2:
        raise DataError(f"a split by sequence needs at least 2 sequences, the store has {len(keys)}")
    groups: dict[tuple, set[str]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r.get("view") or ""), set()).add(sequence_key(r))
    test: set[str] = set()
    for members in groups.values():
        ranked = sorted(members, key=lambda k: hashlib.sha256(f"{cfg.seed}:{k}".encode()).hexdigest())
        n_test = min(max(1, round(cfg.test_fraction * len(ranked))), len(ranked) - 1) if len(ranked) > 1 else 0
        test |= set(ranked[:n_test])
    if not test:  # every group holds one sequence: rank them all together
        ranked = sorted(keys, key=lambda k: hashlib.sha256(f"{cfg.seed}:{k}".encode()).hexdigest())
        test = set(ranked[:min(max(1, round(cfg.test_fraction * len(keys))), len(keys) - 1)])
    split_id = hashlib.sha256(f"{cfg.seed}|{cfg.test_fraction}|{'|'.join(keys)}".encode()).hexdigest()[:12]
    return Split(split_id, {r["clip_id"]: "test" if sequence_key(r) in test else "train" for r in rows})


def ensure_split(store_dir: Path, cfg: SplitConfig) -> Split:
    """The split of the store's current clips: written to `splits` once (idempotent), then read back."""
    import lancedb

    db = lancedb.connect(str(store_dir))
    rows = _clip_rows(store_dir)
    split = compute_split(rows, cfg)
    names = set(db.table_names()) if hasattr(db, "table_names") else set()
    table = db.open_table(SPLITS) if SPLITS in names else db.create_table(SPLITS, schema=SPLIT_SCHEMA)
    have = table.search().where(f"split_id = '{split.split_id}'").limit(1).to_list() if table.count_rows() else []
    if not have:
        keys = {r["clip_id"]: sequence_key(r) for r in rows}
        table.add(pa.Table.from_pylist([
            {"split_id": split.split_id, "clip_id": c, "sequence_key": keys[c], "side": s, "seed": cfg.seed,
             "test_fraction": cfg.test_fraction, "format_version": FORMAT_VERSION}
            for c, s in sorted(split.side.items())], schema=SPLIT_SCHEMA))
    return split


def validation_split(store_dir: Path, split: Split, version: int | None = None, fraction: float = 0.2,
                     seed: int = 0) -> Split:
    """`split` with part of its train side moved to "val", by sequence and stratified the same way: the
    evaluator trains on "train", stops early on "val" and is scored on "test", three disjoint sets of
    sequences. Not written to the store: it is a function of the split (the run records its id)."""
    rows = [r for r in _clip_rows(store_dir, version) if split.side.get(r["clip_id"]) == "train"]
    inner = compute_split(rows, SplitConfig(seed, fraction))
    side = {c: ("val" if inner.side.get(c) == "test" else s) for c, s in split.side.items()}
    return Split(f"{split.split_id}-val{inner.split_id[:6]}", side)


def load_split(store_dir: Path, split_id: str) -> Split:
    path = Path(store_dir) / f"{SPLITS}.lance"
    if not path.exists():
        raise DataError(f"the store at {store_dir} has no split; make one with `python -m train split`")
    t = lance.dataset(str(path)).to_table(filter=f"split_id = '{split_id}'", columns=["clip_id", "side"])
    if t.num_rows == 0:
        known = sorted(set(lance.dataset(str(path)).to_table(columns=["split_id"]).column(0).to_pylist()))
        raise DataError(f"no split {split_id!r} in the store; known: {known}")
    return Split(split_id, dict(zip(t.column("clip_id").to_pylist(), t.column("side").to_pylist(), strict=True)))


def _clip_rows(store_dir: Path, version: int | None = None) -> list[dict]:
    path = Path(store_dir) / f"{CLIPS}.lance"
    if not path.exists():
        raise DataError(f"no store at {store_dir}; run `make latents` first")
    cols = ["clip_id", "dataset", "subset", "sequence", "view", "text", "vae_id", "vlm_id"]
    return lance.dataset(str(path), version=version).to_table(columns=cols).to_pylist()


def current_versions(store_dir: Path) -> dict[str, int]:
    return {name: lance.dataset(str(Path(store_dir) / f"{name}.lance")).version for name in READ_TABLES}


def pin_store(store_dir: Path, run_id: str) -> dict[str, int]:
    """Tag every table a run reads at its current version (`run-<run_id>`); returns {table: version}.
    Re-pinning the same run id returns the versions it already has (a resumed run reads the same)."""
    out = {}
    for name in READ_TABLES:
        ds = lance.dataset(str(Path(store_dir) / f"{name}.lance"))
        tag = f"run-{run_id}"
        tags = ds.tags.list()
        if tag not in tags:
            ds.tags.create(tag, ds.version)
            tags = ds.tags.list()
        out[name] = int(tags[tag]["version"])
    return out


def tokens_from_arrow(cell: pa.ListScalar | pa.Array) -> np.ndarray:
    """One list<fixed_size_list<float16>> cell -> (n, dim) float16, a view on the Arrow buffer."""
    arr = cell.values if isinstance(cell, pa.ListScalar) else cell
    dim = arr.type.list_size
    flat = arr.values.to_numpy(zero_copy_only=True) if arr.offset == 0 and arr.null_count == 0 else \
        arr.flatten().to_numpy()
    return flat.reshape(-1, dim)


class ClipDataset(torch.utils.data.Dataset):
    """One side of a split at pinned versions. Item: clip_id, motion_tokens (T_m, D_m), motion_latent
    (D_m,), video_tokens (T_v, D_v), video_latent (D_v,), text_emb (384,), all float32 tensors."""

    def __init__(self, store_dir: Path, versions: dict[str, int], split: Split, side: str) -> None:
        self.store_dir, self.versions = Path(store_dir), dict(versions)
        # scalar columns only: the vectors stay on disk until an item is read
        clips = lance.dataset(str(self.store_dir / f"{CLIPS}.lance"), version=versions[CLIPS]).to_table(
            columns=["clip_id", "vae_id", "vlm_id", "text"]).to_pylist()
        wanted = set(split.clips(side))
        rows = [r for r in clips if r["clip_id"] in wanted]
        vae_ids = {r["vae_id"] for r in rows}
        vlm_ids = {r["vlm_id"] for r in rows if r["vlm_id"]}
        if len(vae_ids) > 1 or len(vlm_ids) > 1:
            raise DataError(f"the {side} split mixes model generations (VAE {sorted(vae_ids)}, video encoder "
                            f"{sorted(vlm_ids)}); rebuild the store with one (`latents build --prune`)")
        self.vae_id = next(iter(vae_ids), None)
        self.vlm_id = next(iter(vlm_ids), None)
        self._rows = {name: self._row_index(name) for name in (MOTION_TOKENS, VIDEO_TOKENS)}
        self.skipped = sorted(r["clip_id"] for r in rows
                              if r["clip_id"] not in self._rows[VIDEO_TOKENS])  # no video tokens: ledger
        keep = [r for r in rows if r["clip_id"] not in set(self.skipped)]
        self.clip_ids = [r["clip_id"] for r in keep]
        self.texts = [r["text"] or "" for r in keep]
        self._clip_row = self._row_index(CLIPS)
        self._ds: dict[str, lance.LanceDataset] = {}

    def _row_index(self, name: str) -> dict[str, int]:
        ds = lance.dataset(str(self.store_dir / f"{name}.lance"), version=self.versions[name])
        return {c: i for i, c in enumerate(ds.to_table(columns=["clip_id"]).column(0).to_pylist())}

    def _dataset(self, name: str) -> lance.LanceDataset:
        if name not in self._ds:  # opened lazily, in the process that reads (spawned loader workers)
            self._ds[name] = lance.dataset(str(self.store_dir / f"{name}.lance"), version=self.versions[name])
        return self._ds[name]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ds": {}}

    def __len__(self) -> int:
        return len(self.clip_ids)

    def __getitem__(self, i: int) -> dict:
        clip_id = self.clip_ids[i]
        clip = self._dataset(CLIPS).take([self._clip_row[clip_id]], columns=["motion_latent", "video_latent", "text_emb"])
        motion = self._dataset(MOTION_TOKENS).take([self._rows[MOTION_TOKENS][clip_id]], columns=["tokens"])
        video = self._dataset(VIDEO_TOKENS).take([self._rows[VIDEO_TOKENS][clip_id]], columns=["tokens"])

        def vec(col: str) -> torch.Tensor:
            return torch.from_numpy(clip.column(col).combine_chunks().values.to_numpy().astype(np.float32))

        return {"clip_id": clip_id, "index": i,
                "motion_tokens": torch.from_numpy(tokens_from_arrow(motion.column(0)[0]).astype(np.float32)),
                "video_tokens": torch.from_numpy(tokens_from_arrow(video.column(0)[0]).astype(np.float32)),
                "motion_latent": vec("motion_latent"), "video_latent": vec("video_latent"), "text_emb": vec("text_emb")}


def pad_tokens(seqs: list[torch.Tensor], length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (T_i, D) tensors to (B, length or max T_i, D) with a mask (B, T) bool, True = real."""
    n = length or max(len(x) for x in seqs)
    out = torch.zeros(len(seqs), n, seqs[0].shape[-1])
    mask = torch.zeros(len(seqs), n, dtype=torch.bool)
    for k, x in enumerate(seqs):
        out[k, :len(x)] = x
        mask[k, :len(x)] = True
    return out, mask


def collate(items: list[dict], motion_tokens: int = 30) -> dict:
    """Stack a batch. Motion tokens (fewer for a clip shorter than 5 s) are padded to `motion_tokens`,
    video tokens to the longest in the batch, each with a mask (True = a real token)."""
    motion, motion_mask = pad_tokens([it["motion_tokens"] for it in items], motion_tokens)
    video, video_mask = pad_tokens([it["video_tokens"] for it in items])
    out = {key: torch.stack([it[key] for it in items]) for key in ("motion_latent", "video_latent", "text_emb")}
    return {**out, "motion_tokens": motion, "motion_mask": motion_mask, "video_tokens": video,
            "video_mask": video_mask, "clip_id": [it["clip_id"] for it in items],
            "index": torch.tensor([it["index"] for it in items])}
