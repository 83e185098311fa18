"""Per-sequence work: read one source sequence, cut its clips, stage them in one tar.

This is the unit a Ray task (or the serial executor) runs. It is resumable: a sequence whose
staged tar and sidecar match the current source hashes and config is not redone. It never
raises for bad input: it returns a `Failure` with one typed reason.
"""

from __future__ import annotations

import json
import re
import resource
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ingest.body_model import load_body_model
from ingest.bones_seed import read_bones_seed
from ingest.clips import build_samples
from ingest.config import IngestConfig
from ingest.failures import Failure, Reason
from ingest.g1_csv import read_g1_csv
from ingest.lerobot_import import read_lerobot
from ingest.motionx import read_motionx
from ingest.nymeria import read_nymeria
from ingest.scene import data_root_of_work_dir, store_scene
from ingest.scene_holosoma import read_holosoma_climb
from ingest.scene_videomimic import read_videomimic
from ingest.sequence import SourceRef
from robomirror.atomic import digest_of, publish_json, sha256_file
from robomirror.errors import SourceError
from robomirror.shards import cached_staging, stage_samples

ROBOT_READERS = {"g1_csv": read_g1_csv, "bones_seed": read_bones_seed, "lerobot": read_lerobot}  # dataset -> reader of G1 trajectories (SourceRef, cfg)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SequenceResult:
    key: str
    status: str  # "built" | "cached" | "failed" | "infra_error" (the machine failed: the run must stop)
    n_clips: int
    failure: Failure | None
    seconds: float
    peak_rss_mb: float
    staged_bytes: int


def staging_name(ref: SourceRef) -> str:
    """A flat, safe file stem for a sequence; a hash suffix keeps sanitised names unique."""
    readable = _UNSAFE.sub("_", f"{ref.subset}__{ref.sequence}").strip("._")[:80] or "seq"
    return f"{readable}-{digest_of([ref.key])[:8]}"


# A source file whose stat (device, inode, size, mtime) is unchanged since it was hashed is not read
# again: a Nymeria data.vrs is gigabytes, and every rerun used to hash it whole just to find its staging
# cached. As git's index does, a file modified within RACY_S of its hashing is never trusted from cache.
# Files below MEMO_MIN_BYTES are read again every run: cheap, and the memo would only add files.
SOURCE_HASH_DIR = "source_sha256"
RACY_S = 2.0
MEMO_MIN_BYTES = 64 << 20


def _stat_key(path: Path) -> tuple[str, list[int]]:
    st = path.stat()
    return str(path.resolve()), [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def source_sha256(path: Path, cache_dir: Path | None = None) -> str:
    """sha256 of a source file, remembered in cache_dir under its stat (None: always read)."""
    if cache_dir is None or path.stat().st_size < MEMO_MIN_BYTES:
        return sha256_file(path)
    name, stat = _stat_key(path)
    entry = Path(cache_dir) / f"{digest_of([name])[:24]}.json"
    try:
        have = json.loads(entry.read_bytes())
        if have.get("path") == name and have.get("stat") == stat:
            return str(have["sha256"])
    except (OSError, ValueError, KeyError, TypeError):  # absent or torn: hash again
        pass
    digest = sha256_file(path)
    name_after, stat_after = _stat_key(path)
    if stat_after == stat and time.time() - stat[3] / 1e9 > RACY_S:  # unchanged while read, and not racy
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            publish_json(entry, {"path": name, "stat": stat, "sha256": digest})
        except OSError:  # a read-only work dir only costs the next run a re-read
            pass
    return digest


def hash_sources(ref: SourceRef, cache_dir: Path | None = None) -> dict[str, dict]:
    """role -> {path, sha256} for every source file that exists."""
    out = {}
    for role, path in ref.files:
        if Path(path).is_file():
            out[role] = {"path": path, "sha256": source_sha256(Path(path), cache_dir)}
    return out


def process_sequence(ref: SourceRef, cfg: IngestConfig, work_dir: str) -> SequenceResult:
    t_start = time.perf_counter()
    if ref.problem is not None:  # found by discovery but not a source: one ledger row
        return _result(ref, "failed", 0, Failure(ref.dataset, ref.sequence, ref.files[0][1], "ingest", *ref.problem),
                       t_start, 0)
    # names are data: never Path.with_suffix on a stem that may hold dots (take.v1 vs take.v2)
    name = staging_name(ref)
    tar_path, side_path = Path(work_dir) / f"{name}.tar", Path(work_dir) / f"{name}.json"
    try:
        sources = hash_sources(ref, Path(work_dir) / SOURCE_HASH_DIR)
        source_digest = digest_of(sorted((r, s["sha256"]) for r, s in sources.items()))
        header = {"sequence": ref.key, "source_digest": source_digest, "config": cfg.fingerprint()}
        side = cached_staging(side_path, tar_path, header)
        if side is not None:
            return _result(ref, "cached", len(side["samples"]), None, t_start, side["bytes"])
        if ref.dataset == "holosoma_climb":  # human joint positions with the scene they climb (issue 22)
            seq = read_holosoma_climb(ref, cfg)
        elif ref.dataset in ROBOT_READERS:  # G1 joint trajectories: no body model (ingest/g1_csv.py)
            seq = ROBOT_READERS[ref.dataset](ref, cfg)
        else:
            model_type = "smplx" if ref.dataset == "motionx" else "smpl"
            body = load_body_model(model_type, Path(cfg.body_models_dir) if cfg.body_models_dir else None)
            reader = {"motionx": read_motionx, "videomimic": read_videomimic}.get(ref.dataset, read_nymeria)
            seq = reader(ref, body, cfg)  # videomimic: SMPL with the mesh of the place (issue 22)
        if seq.scene is not None:  # once per sequence, content-addressed; every clip's meta refers to it
            store_scene(data_root_of_work_dir(work_dir), seq.scene)
        samples = build_samples(seq, cfg, sources)
        try:
            side = stage_samples(tar_path, side_path, [(s.key, s.members, s.meta) for s in samples], header)
        except OSError as e:  # read-only or full data root, EIO: never the input's fault
            return _infra(ref, f"cannot write staging {tar_path}: {type(e).__name__}: {e}", t_start)
        return _result(ref, "built", len(samples), None, t_start, side["bytes"])
    except SourceError as e:
        # a source that is bad now must not be republished from an older run's staging bytes
        tar_path.unlink(missing_ok=True)
        side_path.unlink(missing_ok=True)
        if cfg.on_error == "raise":
            raise
        return _result(ref, "failed", 0, Failure(ref.dataset, ref.sequence, e.path, "ingest", e.reason, e.detail), t_start, 0)
    except OSError as e:  # an I/O error no reader turned into a SourceError: the disk, not the data
        if cfg.on_error == "raise":
            raise
        return _infra(ref, f"I/O error while reading {ref.key}: {type(e).__name__}: {e}", t_start)
    except Exception as e:  # noqa: BLE001 - a bug must not cost the rest of the run
        if cfg.on_error == "raise":
            raise
        detail = f"{type(e).__name__}: {e} | {traceback.format_exc(limit=3).splitlines()[-3:]}"
        return _result(ref, "failed", 0, Failure(ref.dataset, ref.sequence, ref.files[0][1], "ingest", Reason.INTERNAL.value, detail), t_start, 0)


def _infra(ref: SourceRef, detail: str, t_start: float) -> SequenceResult:
    f = Failure(ref.dataset, ref.sequence, ref.files[0][1], "ingest", "infrastructure", detail)
    return _result(ref, "infra_error", 0, f, t_start, 0)


def _result(ref, status, n, failure, t_start, nbytes) -> SequenceResult:
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return SequenceResult(ref.key, status, n, failure, time.perf_counter() - t_start, rss_mb, nbytes)
