"""Pack staged samples into published WebDataset shards, atomically, deterministically, resumably.

The plan (which clip goes to which shard) depends only on the staged content, in sorted
sequence order, so every run over the same sources produces the same shards. A shard on disk is
kept when its sidecar names the same plan and the file hashes to the sidecar's sha256; anything
else is rebuilt. The sidecar is written after the shard, so a shard without a valid sidecar is
never trusted.

Generations: a shard's name carries its plan digest (`shard-000003-<digest>.tar`), so a published
name never changes content: a new corpus writes new names beside the old ones. The manifest is the
single commit point: once it is renamed into place the new generation is visible, and only then are
shards removed, and only those that neither the new nor the previous manifest lists. A reader holding
either manifest finds every clip it lists, whenever a writer is killed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from robomirror import FORMAT_VERSION
from robomirror.atomic import (
    DeferredPublish,
    HashingWriter,
    copy_range,
    digest_of,
    json_bytes,
    publish_json,
    publish_with,
    sha256_bytes,
    sha256_file,
)
from robomirror.errors import FormatVersionError, InfrastructureError, IntegrityError
from robomirror.tario import BLOCK, TarWriter, read_tar, tar_member_bytes, ustar_header, write_tar

SHARD_PATTERN = "shard-%06d-%s.tar"  # index, plan digest prefix
SHARD_GLOB = "shard-*.tar"
_DIGEST_CHARS = 16


@dataclass
class PlannedShard:
    index: int
    samples: list[dict]  # staged sample records: key, meta, members (name, size, sha256)
    staged_tars: list[Path]  # where each sample's members are, parallel to `samples`
    offsets: list[int] = field(default_factory=list)  # byte offset of each sample's first header in its tar

    @functools.cached_property
    def plan_digest(self) -> str:  # cached: the name (hence every manifest row) uses it
        return digest_of([(m["name"], m["sha256"]) for s in self.samples for m in s["members"]])

    @property
    def name(self) -> str:
        return SHARD_PATTERN % (self.index, self.plan_digest[:_DIGEST_CHARS])


@dataclass
class PackResult:
    shards: int
    rebuilt: int
    kept: int
    clips: int
    bytes: int


def load_staged(work_dir: Path, stems: list[str]) -> list[tuple[Path, dict]]:
    """(staged tar, sidecar) for the given sequence stems that are staged, in the given order."""
    out = []
    for stem in stems:
        side_path = work_dir / f"{stem}.json"
        if side_path.is_file():
            side = json.loads(side_path.read_text())
            if side.get("format_version", 0) > FORMAT_VERSION:
                raise FormatVersionError(str(side_path), side["format_version"], FORMAT_VERSION)
            out.append((work_dir / f"{stem}.tar", side))
    return out


def plan_shards(staged: list[tuple[Path, dict]], target_bytes: int) -> list[PlannedShard]:
    shards: list[PlannedShard] = []
    cur = PlannedShard(0, [], [])
    size = 0
    for tar, side in staged:
        offset = 0  # write_tar lays samples out in sidecar order: offsets follow from the sizes
        for sample in side["samples"]:
            cur.samples.append(sample)
            cur.staged_tars.append(tar)
            cur.offsets.append(offset)
            nbytes = sum(tar_member_bytes(m["size"]) for m in sample["members"])
            offset += nbytes
            size += nbytes
            if size >= target_bytes:
                shards.append(cur)
                cur, size = PlannedShard(len(shards), [], []), 0
    if cur.samples:
        shards.append(cur)
    return shards


def verify_shard(path: Path, plan_digest: str | None = None) -> dict | None:
    """The shard's sidecar if the shard is complete and matches it (and the plan), else None.

    A shard's identity is its member list (name, size, sha256 of each member, in order: the plan
    digest), and its bytes follow from that list (our deterministic writer). So verifying reads the
    file once: every header must be the one the writer makes for that member, every member's data
    must hash to its sha256, the tail must be the writer's, and the size must match."""
    side_path = path.with_suffix(".json")
    try:
        side = json.loads(side_path.read_text())
    except (OSError, ValueError):
        return None
    if side.get("format_version", 0) > FORMAT_VERSION:
        raise FormatVersionError(str(side_path), side["format_version"], FORMAT_VERSION)
    if plan_digest is not None and side.get("plan_digest") != plan_digest:
        return None
    members = side.get("members")
    if not members or not path.is_file() or path.stat().st_size != side.get("bytes"):
        return None
    if digest_of([(name, sha) for name, _, sha in members]) != side.get("plan_digest"):
        return None
    return side if _bytes_match(path, members, side["bytes"]) else None


def _bytes_match(path: Path, members: list, nbytes: int) -> bool:
    pos = 0
    with open(path, "rb") as f:
        for name, size, sha in members:
            if f.read(BLOCK) != ustar_header(name, size):
                return False
            h = hashlib.sha256()
            left = size
            while left:
                chunk = f.read(min(left, 8 << 20))
                if not chunk:
                    return False
                h.update(chunk)
                left -= len(chunk)
            if h.hexdigest() != sha:
                return False
            pad = -size % BLOCK
            if f.read(pad) != b"\0" * pad:
                return False
            pos += tar_member_bytes(size)
        return f.read() == TarWriter.tail(pos) and pos + len(TarWriter.tail(pos)) == nbytes


_RANGE_BYTES = 16 << 20  # at most this much of a staged tar per copy_file_range run (bounded syscalls)


def _ranges(shard: PlannedShard):
    """(staged tar, start, [(sample, offset)]) runs of samples that lie back to back in one staged tar.

    A staged tar holds its samples' members, headers included, exactly as the shard holds them (the
    same deterministic writer), so a run is copied as one byte range instead of member by member."""
    run: list = []
    for s, tar, off in zip(shard.samples, shard.staged_tars, shard.offsets, strict=True):
        nbytes = sum(tar_member_bytes(m["size"]) for m in s["members"])
        if run and (run[0] != tar or run[2] != off or run[2] - run[1] >= _RANGE_BYTES):
            yield run[0], run[1], run[3]
            run = []
        if not run:
            run = [tar, off, off, []]
        run[3].append((s, off))
        run[2] = off + nbytes
    if run:
        yield run[0], run[1], run[3]


def _checked(tar: Path, fd: int, samples: list) -> None:
    """Every member header of the run (read from the staged tar at its offset) is exactly the header
    our writer makes for the planned member: its name and size."""
    for s, off in samples:
        pos = off
        for m in s["members"]:
            if os.pread(fd, BLOCK, pos) != ustar_header(m["name"], m["size"]):
                raise IntegrityError(f"{tar}: member {m['name']} missing or changed since staging")
            pos += tar_member_bytes(m["size"])


def _write_shard(f, shard: PlannedShard) -> int:
    """Write the shard's tar into the open file `f`; returns its size in bytes.

    Each run of samples that lies back to back in a staged tar is copied inside the kernel
    (copy_file_range): no read into Python, no hash at publish time (the staged bytes were hashed
    when staged, or verified when the cache was reused; the shard's identity is its member list).
    Every member header is checked against the plan before its run is copied."""
    f.flush()
    fd = f.fileno()
    total = 0
    files: dict[Path, object] = {}
    try:
        for tar, start, samples in _ranges(shard):
            if tar not in files:
                files[tar] = open(tar, "rb")  # noqa: SIM115 - closed below
            src = files[tar]
            end = samples[-1][1] + sum(tar_member_bytes(m["size"]) for m in samples[-1][0]["members"])
            if os.fstat(src.fileno()).st_size < end:
                raise IntegrityError(f"{tar}: shorter than its sidecar says (< {end} bytes)")
            _checked(tar, src.fileno(), samples)
            copy_range(src.fileno(), fd, start, end - start)
            total += end - start
    finally:
        for src in files.values():
            src.close()
    tail = TarWriter.tail(total)
    f.write(tail)
    return total + len(tail)


def publish_shard(out_dir: Path, shard: PlannedShard, publisher: DeferredPublish) -> dict:
    """Write one shard, then its sidecar, through `publisher`: their final names appear only when the
    publisher commits (all fsynced first, then renamed in this order, then the directory synced once)."""
    path = out_dir / shard.name
    written: list[int] = []
    publisher.write(path, lambda f: written.append(_write_shard(f, shard)))
    side = {
        "format_version": FORMAT_VERSION, "shard": shard.name, "bytes": written[-1], "n_samples": len(shard.samples),
        "keys": [s["key"] for s in shard.samples], "plan_digest": shard.plan_digest,
        "members": [[m["name"], m["size"], m["sha256"]] for s in shard.samples for m in s["members"]],
    }
    publisher.write(path.with_suffix(".json"), lambda f: f.write(json_bytes(side)))
    return side


def manifest_shards(manifest_path: Path) -> list[str]:
    """The shard names a manifest lists, in order; empty when there is no (readable) manifest."""
    try:
        names = pq.read_table(manifest_path, columns=["shard"]).column("shard").to_pylist()
    except (OSError, pa.ArrowInvalid):
        return []
    return list(dict.fromkeys(names))


def published_shards(manifest_path: Path) -> list[Path]:
    """The shard files of the committed generation (what its manifest lists), in order.

    Consumers read these, never a glob of the folder: the folder also holds the previous
    generation's shards, kept for readers that still hold the previous manifest.
    """
    return [Path(manifest_path).parent / name for name in manifest_shards(manifest_path)]


def pack(staged: list[tuple[Path, dict]], out_dir: Path, manifest_path: Path, target_bytes: int,
         manifest_row: Callable[[str, dict], dict], manifest_schema: pa.Schema) -> PackResult:
    """Publish the planned shards (keeping verified ones), commit the manifest, then collect garbage.

    manifest_row(shard_name, staged_sample) -> one manifest row; rows follow the plan order.
    The steps, each atomic: new shards (+ sidecars) under new names -> the manifest (the commit)
    -> removal of shards that neither this manifest nor the previous one lists. A kill before the
    commit leaves the previous generation whole; a kill after it leaves the new one whole.
    """
    previous = set(manifest_shards(manifest_path))
    plan = plan_shards(staged, target_bytes)
    rows, rebuilt, kept, nbytes = [], 0, 0, 0
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with DeferredPublish() as publisher:  # every new shard durable under its name before the commit
            for shard in plan:
                side = verify_shard(out_dir / shard.name, shard.plan_digest)
                if side is None:
                    side = publish_shard(out_dir, shard, publisher)
                    rebuilt += 1
                else:
                    kept += 1
                nbytes += side["bytes"]
                rows.extend(manifest_row(shard.name, s) for s in shard.samples)
        table = pa.Table.from_pylist(rows, schema=manifest_schema)
        publish_with(manifest_path, lambda f: pq.write_table(table, f))  # the commit point
    except OSError as e:  # full or read-only: the committed generation is untouched
        raise InfrastructureError(f"publishing to {out_dir} failed: {e.strerror or e}; nothing was committed, the "
                                  "previous manifest and every shard it lists are intact (rerun resumes)") from e
    collect_garbage(out_dir, keep=previous | {s.name for s in plan})
    return PackResult(len(plan), rebuilt, kept, len(rows), nbytes)


def collect_garbage(out_dir: Path, keep: set[str]) -> int:
    """Remove shards (sidecar first) that no kept generation lists; returns how many went."""
    n = 0
    for old in sorted(out_dir.glob(SHARD_GLOB)):
        if old.name not in keep:
            old.with_suffix(".json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
            n += 1
    for side in sorted(out_dir.glob("shard-*.json")):  # a sidecar whose shard is gone
        if side.with_suffix(".tar").name not in keep and not side.with_suffix(".tar").exists():
            side.unlink(missing_ok=True)
    return n


def stage_samples(tar_path: Path, side_path: Path, samples: list[tuple[str, dict[str, bytes], dict]],
                  header: dict) -> dict:
    """Write one staging tar of samples (key, suffix -> bytes, meta) and then its sidecar.

    The sidecar (written last) lists every member's size and sha256 and carries `header`
    (source digest, config fingerprint, ...); its presence marks a complete staging.
    """
    members = [(f"{key}.{suffix}", m[suffix]) for key, m, _ in samples for suffix in sorted(m)]
    hashed: list[HashingWriter] = []

    def write(f) -> None:
        hashed.append(HashingWriter(f))
        write_tar(hashed[-1], members)

    publish_with(tar_path, write)
    side = {
        "format_version": FORMAT_VERSION, **header, "bytes": hashed[-1].bytes, "sha256": hashed[-1].sha256.hexdigest(),
        "samples": [{"key": key, "meta": meta,
                     "members": [{"name": f"{key}.{k}", "size": len(v), "sha256": sha256_bytes(v)}
                                 for k, v in sorted(m.items())]} for key, m, meta in samples],
    }
    publish_json(side_path, side)
    return side


def cached_staging(side_path: Path, tar_path: Path, expect: dict) -> dict | None:
    """The sidecar if the staging is complete, intact and made from the same inputs (`expect`)."""
    try:
        side = json.loads(side_path.read_text())
    except (OSError, ValueError):
        return None
    if side.get("format_version") != FORMAT_VERSION or any(side.get(k) != v for k, v in expect.items()):
        return None
    if not tar_path.is_file() or tar_path.stat().st_size != side.get("bytes") or sha256_file(tar_path) != side.get("sha256"):
        return None
    return side


def find_sample(root: Path, stage: str, clip_id: str) -> dict[str, bytes] | None:
    """One published sample's members (suffix -> bytes), found through the stage's manifests."""
    for manifest in sorted(Path(root).glob(f"shards/{stage}/*/manifest.parquet")):
        rows = [r for r in pq.read_table(manifest, columns=["clip_id", "shard"]).to_pylist() if r["clip_id"] == clip_id]
        if rows:
            return {n.split(".", 1)[1]: d for n, d in read_tar(str(manifest.parent / rows[0]["shard"]))
                    if n.startswith(clip_id + ".")}
    return None
