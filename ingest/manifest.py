"""The ingest manifest: one row per clip, next to the published shards.

File-system names (subset, sequence, source paths) are stored in one reversible text form,
`stored_name`: a name that is valid UTF-8 and holds no backslash is stored as it is; each byte that is
not valid UTF-8 (a surrogate escape from os.fsdecode) is written `\\xNN` and a backslash `\\\\`. Discovery,
staging metas, the manifest, the ledger and `--prune` compare names through `fs_name(stored)`, which
gives back exactly the str os.listdir gave (so its os.fsencode bytes). Unicode normalisation is never
applied: NFC and NFD spellings of one word are two names, as they are two files on Linux.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MANIFEST_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("shard", pa.string()), ("dataset", pa.string()), ("subset", pa.string()),
    ("sequence", pa.string()), ("view", pa.string()), ("start_frame", pa.int32()), ("end_frame", pa.int32()),
    ("n_frames", pa.int32()), ("start_s", pa.float64()), ("end_s", pa.float64()), ("duration_s", pa.float64()),
    ("fps", pa.float32()), ("video_fps", pa.float32()), ("video_frames", pa.int32()),
    ("text", pa.string()),
    ("texts", pa.list_(pa.struct([("kind", pa.string()), ("text", pa.string()), ("start_s", pa.float64()),
                                  ("end_s", pa.float64()), ("overlap", pa.float64())]))),
    ("body_model", pa.string()), ("body_source", pa.string()),
    ("source_paths", pa.string()), ("source_sha256", pa.string()), ("bytes", pa.int64()),
    ("format_version", pa.int32()),
])
_ESCAPED = re.compile(r"\\(\\|x[0-9a-fA-F]{2})")


def stored_name(name: str) -> str:
    """The manifest's form of a file-system name (valid UTF-8, reversible by `fs_name`)."""
    raw = name.encode("utf-8", "surrogateescape")  # os.fsencode's bytes on a UTF-8 system
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        if ch == "\\":
            out.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":  # one byte that is not valid UTF-8
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


def fs_name(stored: str) -> str:
    """The name as os.fsdecode gives it, from `stored_name`'s form. A backslash not followed by
    `\\` or `xNN` is kept as it is (manifests written before this form existed hold such names)."""
    def one(m: re.Match) -> str:
        s = m.group(1)
        if s == "\\":
            return "\\"
        byte = int(s[1:], 16)
        return chr(0xDC00 + byte) if byte >= 0x80 else chr(byte)
    return _ESCAPED.sub(one, stored)


def manifest_row(shard_name: str, sample: dict) -> dict:
    m = sample["meta"]
    return {
        "clip_id": sample["key"], "shard": shard_name, "dataset": m["dataset"], "subset": m["subset"],
        "sequence": m["sequence"], "view": m["view"], "start_frame": m["start_frame"],
        "end_frame": m["end_frame"], "n_frames": m["n_frames"], "start_s": m["start_s"],
        "end_s": m["end_s"], "duration_s": round(m["end_s"] - m["start_s"], 6), "fps": m["fps"],
        "video_fps": (m["video"] or {}).get("fps"), "video_frames": (m["video"] or {}).get("n_frames"),
        "text": " | ".join(t["text"] for t in m["texts"]), "texts": m["texts"],
        "body_model": m["body_model"], "body_source": m["body_source"],
        "source_paths": json.dumps({r: s["path"] for r, s in m["sources"].items()}, sort_keys=True),
        "source_sha256": json.dumps({r: s["sha256"] for r, s in m["sources"].items()}, sort_keys=True),
        "bytes": sum(x["size"] for x in sample["members"]), "format_version": m["format_version"],
    }


@dataclass
class PublishedSequence:
    """What the committed manifest says one sequence was published with."""

    sources: dict[str, str] = field(default_factory=dict)  # role -> source path (fs form) it was read from
    clips: dict[tuple[int, int], tuple[bool, bool]] = field(default_factory=dict)  # span -> (has video, has text)


def published_sequences(manifest_path: Path) -> dict[tuple[str, str], PublishedSequence]:
    """(subset, sequence) in fs form -> its published sources and clip modalities; {} without a manifest."""
    if not Path(manifest_path).is_file():
        return {}
    cols = ["subset", "sequence", "start_frame", "end_frame", "video_frames", "texts", "source_paths"]
    table = pq.read_table(manifest_path, columns=cols)
    n_texts = pc.fill_null(pc.list_value_length(table.column("texts")), 0)  # not the texts themselves
    table = table.drop_columns(["texts"]).append_column("n_texts", n_texts)
    out: dict[tuple[str, str], PublishedSequence] = {}
    for r in table.to_pylist():
        seq = out.setdefault((fs_name(r["subset"]), fs_name(r["sequence"])), PublishedSequence())
        seq.sources.update({role: fs_name(p) for role, p in json.loads(r["source_paths"] or "{}").items()})
        seq.clips[(r["start_frame"], r["end_frame"])] = (r["video_frames"] is not None, r["n_texts"] > 0)
    return out


def staged_modalities(side: dict) -> dict[tuple[int, int], tuple[bool, bool]]:
    """span -> (has video, has text) of every clip in one staging sidecar."""
    return {(s["meta"]["start_frame"], s["meta"]["end_frame"]): (s["meta"]["video"] is not None,
                                                                 bool(s["meta"]["texts"]))
            for s in side["samples"]}
