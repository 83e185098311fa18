"""The data root and everything below it, defined in one place.

```
<root>/                                    ROBOMIRROR_DATA or --data-root, default ./data
  sample/motionx/                          generated sample corpus, Motion-X layout
  sample/nymeria/                          generated sample corpus, Nymeria layout
  work/ingest/<dataset>/<sequence>.tar     per-sequence staged clips (resume cache) + .json sidecar
  shards/ingest/<dataset>/shard-%06d.tar   published WebDataset shards + shard-%06d.json sidecars
  shards/ingest/<dataset>/manifest.parquet one row per clip
  ledger/ingest.parquet                    one row per source item that failed, with its reason
```
Later stages add `shards/retarget/` and `store/` next to these.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_DATA_ROOT = "ROBOMIRROR_DATA"
DEFAULT_DATA_ROOT = "data"
DATASETS = ("motionx", "nymeria")


def resolve_data_root(flag: str | os.PathLike | None = None) -> Path:
    """The data root: the flag if given, else $ROBOMIRROR_DATA, else ./data."""
    if flag:
        return Path(flag).resolve()
    return Path(os.environ.get(ENV_DATA_ROOT) or DEFAULT_DATA_ROOT).resolve()


@dataclass(frozen=True)
class DataLayout:
    """Paths below one data root. Construct with `DataLayout(resolve_data_root(flag))`."""

    root: Path

    @property
    def sample_dir(self) -> Path:
        return self.root / "sample"

    def sample_source(self, dataset: str) -> Path:
        return self.sample_dir / dataset

    def work_dir(self, stage: str, dataset: str) -> Path:
        return self.root / "work" / stage / dataset

    def shard_dir(self, stage: str, dataset: str) -> Path:
        return self.root / "shards" / stage / dataset

    def manifest(self, stage: str, dataset: str) -> Path:
        return self.shard_dir(stage, dataset) / "manifest.parquet"

    def ledger(self, stage: str) -> Path:
        return self.root / "ledger" / f"{stage}.parquet"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"


def printable(name: str) -> str:
    """A file-system name as valid UTF-8 text for manifests, metas and ledgers.

    A name that is not valid UTF-8 on disk reaches Python with surrogate escapes (os.fsdecode); Arrow
    and JSON consumers cannot hold those, so each undecodable byte is written as `\\xNN`. Valid names
    are returned unchanged.
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
