"""The ingest manifest: one row per clip, next to the published shards."""

from __future__ import annotations

import json

import pyarrow as pa

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
