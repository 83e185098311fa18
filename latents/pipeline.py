"""`make latents`: motion VAE, Qwen3-VL video and text embeddings of every retargeted clip into
the LanceDB store, with provenance and quality verdicts from the manifests.

The VAE trains on the driver (or loads); the VLM is resolved on the driver (a local directory, or
the tiny offline model built once into the cache). Each retarget shard is embedded in a Ray task,
which reads the clips' videos from their ingest shards. One driver commits to Lance shard by shard
(`ray.data.write_lance` is broken with pylance 14), so a killed build leaves whole shards only.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from ingest.failures import Failure, Reason, write_ledger
from ingest.video import decode_mp4_bytes
from latents.features import motion_features
from latents.motion_vae import VAEConfig, encode, load_checkpoint, reconstruct, save_checkpoint, train_on
from latents.recon_error import joint_error_rad, keypoint_error_m
from latents.store import CLIPS, MOTION_TOKENS, VIDEO_TOKENS, Store, StoreError
from latents.text import TEXT_MODEL_ID, embed_texts
from latents.video import VideoClip, VideoSampling, embed_videos, load_vlm, resolve_vlm_dir, sample_indices
from robomirror.atomic import digest_of
from robomirror.paths import DataLayout
from robomirror.tario import read_tar
from robomirror.writer_lock import writes_data_root

STAGE = "latents"


@dataclass
class LatentsSummary:
    clips: int = 0
    inserted: int = 0
    vae_id: str = ""
    vlm_id: str = ""
    video_dim: int = 0
    deduplicated: int = 0  # clips whose duplicated rows (from old racing builds) were rewritten once
    clips_without_video: int = 0
    pruned: int = 0  # orphan rows removed by --prune
    failures: int = 0  # rows in ledger/latents.parquet
    vae_trained: bool = False
    heldout_joint_err_rad: float = float("nan")
    heldout_baseline_err_rad: float = float("nan")
    heldout_keypoint_err_m: float = float("nan")  # FK of decoded vs original joints, root at the origin
    heldout_baseline_keypoint_err_m: float = float("nan")
    final_loss: float = float("nan")
    store: str = ""
    versions: dict[str, int] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)


def _manifest_rows(layout: DataLayout, stage: str) -> dict[str, dict]:
    rows = {}
    for m in sorted(layout.root.glob(f"shards/{stage}/*/manifest.parquet")):
        for r in pq.read_table(m).to_pylist():
            r["_shard_path"] = str(m.parent / r["shard"])
            rows[r["clip_id"]] = r
    return rows


def scene_columns(layout: DataLayout, rt: dict, bounds: dict[str, list[float]]) -> dict:
    """The store's scene columns (latents/store.py SCENE_FIELDS) of a clip from its retarget manifest row;
    the bounds come from the stored scene (<root>/scenes/<id>.npz), read once per scene into `bounds`."""
    from ingest.scene import load_scene

    sid = rt.get("scene_id")
    if not sid:
        return {"ground": rt.get("ground") or "flat", "scene_id": None, "scene_kind": None, "scene_bounds_m": None}
    if sid not in bounds:
        lo, hi = load_scene(layout.root, sid).bounds_m
        bounds[sid] = [*lo, *hi]
    return {"ground": rt.get("ground") or "scene", "scene_id": sid, "scene_kind": rt.get("scene_kind"),
            "scene_bounds_m": bounds[sid]}


MAX_HELDOUT_REPORT = 256  # held-out clips whose reconstruction error is reported (bounded memory)


@dataclass(frozen=True)
class ShardJob:
    retarget_shard: str
    texts: dict[str, str]  # clip_id -> text
    ingest_shards: dict[str, str]  # clip_id -> the ingest shard holding its video


def _videos(job: ShardJob) -> tuple[dict[str, VideoClip], list[Failure]]:
    """The clips' videos, read from their ingest shards (one pass per shard); a video that cannot
    be decoded is a failure (the clip keeps its motion and text latents, its video latent is null)."""
    out, failures = {}, []
    for shard in sorted(set(job.ingest_shards.values())):
        members: dict[str, dict[str, bytes]] = {}
        for name, data in read_tar(shard):
            clip, _, suffix = name.partition(".")
            if job.ingest_shards.get(clip) == shard and suffix in ("video.mp4", "meta.json"):
                members.setdefault(clip, {})[suffix] = data
        for clip, m in members.items():
            if "video.mp4" not in m:
                continue
            meta = json.loads(m.get("meta.json", b"{}"))
            try:
                frames, _, fps = decode_mp4_bytes(m["video.mp4"])
            except Exception as e:  # noqa: BLE001 - any container/codec error is this clip's
                failures.append(Failure(meta.get("dataset", ""), clip, f"{shard}:{clip}.video.mp4", STAGE,
                                        Reason.VIDEO_UNREADABLE.value, f"{type(e).__name__}: {e}"[:300]))
                continue
            out[clip] = VideoClip(frames, float((meta.get("video") or {}).get("fps") or fps), meta.get("view", "third_person"))
    return out, failures


def embed_shard(job: ShardJob, vae_dir: str, vlm_dir: str, sampling: VideoSampling) -> tuple[dict[str, dict], list[Failure]]:
    """One Ray task: every clip of a retarget shard -> motion latent + tokens, video latent + tokens,
    text; plus the failures. Anything unexpected fails the shard as one ledger row, not the build."""
    try:
        return _embed_shard(job, vae_dir, vlm_dir, sampling)
    except Exception as e:  # noqa: BLE001 - recorded with its reason; the other shards go on
        return {}, [_shard_failure(job, Reason.INTERNAL, e)]


def _shard_failure(job: ShardJob, reason: Reason, e: BaseException) -> Failure:
    """One ledger row for a whole shard that could not be embedded."""
    return Failure("", Path(job.retarget_shard).name, job.retarget_shard, STAGE, reason.value,
                   f"{type(e).__name__}: {e}"[:300])


def _embed_shard(job: ShardJob, vae_dir: str, vlm_dir: str, sampling: VideoSampling) -> tuple[dict[str, dict], list[Failure]]:
    vae = load_checkpoint(Path(vae_dir))
    ids, feats = [], []
    for name, data in read_tar(job.retarget_shard):
        if name.endswith(".robot.npz"):
            ids.append(name.split(".")[0])
            feats.append(motion_features(dict(np.load(io.BytesIO(data), allow_pickle=False))))
    tokens, pooled, n_tok = encode(vae, feats)
    emb = embed_texts([job.texts.get(c, "") for c in ids])
    videos, failures = _videos(job)
    with_video = [c for c in ids if c in videos]
    video_out = dict(zip(with_video, embed_videos(load_vlm(vlm_dir), [videos[c] for c in with_video], sampling),
                         strict=True))
    out = {}
    for i, c in enumerate(ids):
        vt, vp = video_out.get(c, (None, None))
        out[c] = {"pooled": pooled[i], "tokens": tokens[i, : n_tok[i]].astype(np.float16), "n_tokens": int(n_tok[i]),
                  "text_emb": emb[i], "video_tokens": vt, "video_latent": vp,
                  "video_frames": len(sample_indices(len(videos[c].frames), videos[c].fps, sampling)) if c in videos else None}
    return out, failures


def checkpoint_matches(ckpt: Path, content_hash: str) -> bool:
    """Both checkpoint files present, loadable, and holding the weights with this content hash."""
    if not ((ckpt / "model.safetensors").is_file() and (ckpt / "config.json").is_file()):
        return False
    try:
        return load_checkpoint(ckpt).content_hash() == content_hash
    except Exception:  # noqa: BLE001 - a truncated or corrupt file is simply not a match
        return False


@writes_data_root("latents build")
def run_latents(layout: DataLayout, vae_dir: Path | None = None, vae_cfg: VAEConfig | None = None,
                executor: str = "serial", ray_address: str | None = None, num_cpus: int | None = None,
                vlm: str | None = None, sampling: VideoSampling = VideoSampling(), progress: bool = False,
                prune: bool = False) -> LatentsSummary:
    """Train (or load) the VAE and resolve the VLM on the driver, embed each retarget shard in a task,
    commit shard by shard. The store holds one model generation: every current clip is (re-)embedded
    with the current models, and rows of clips no longer in the retarget shards (orphans) made with
    other models make the build refuse unless `prune` removes them (`prune` removes all orphans)."""
    from robomirror.executor import run_tasks

    s = LatentsSummary(store=str(layout.store_dir))
    vlm_dir = resolve_vlm_dir(vlm, layout.root / "cache" / "vlm")
    vlm_model = load_vlm(str(vlm_dir))
    s.vlm_id, s.video_dim = vlm_model.vlm_id, vlm_model.hidden_size
    if vae_dir is not None:
        vae = load_checkpoint(vae_dir)
    else:
        from latents.motion_stream import clip_index, feature_stats, read_features, read_motion

        refs = clip_index(layout.root)  # streamed from the shards: the corpus is never in memory
        if not refs:
            raise FileNotFoundError(f"no retargeted clips under {layout.root}; run `make shards` first")
        cfg = vae_cfg or VAEConfig(feature_dim=read_features(refs[0]).shape[1])
        held = set(range(0, len(refs), 5))  # every fifth clip is held out for the error report
        train_refs = [r for i, r in enumerate(refs) if i not in held]
        mean, std = feature_stats(train_refs)
        vae = train_on(train_refs, cfg, mean, std, progress=progress)
        s.vae_trained, s.final_loss = True, vae.losses[-1]
        hf = [read_features(refs[i]) for i in sorted(held)[:MAX_HELDOUT_REPORT]]
        rec = reconstruct(vae, hf)
        mean_pose = [np.broadcast_to(vae.mean, f.shape) for f in hf]
        n_dof = read_motion(refs[0])["joint_pos"].shape[1]
        s.heldout_joint_err_rad = joint_error_rad(rec, hf, n_dof)
        s.heldout_baseline_err_rad = joint_error_rad(mean_pose, hf, n_dof)
        s.heldout_keypoint_err_m = keypoint_error_m(rec, hf, n_dof)
        s.heldout_baseline_keypoint_err_m = keypoint_error_m(mean_pose, hf, n_dof)
    s.vae_id = f"motion-vae-{vae.content_hash()}"
    ckpt = layout.store_dir / "models" / s.vae_id
    if not checkpoint_matches(ckpt, vae.content_hash()):  # missing, half-written or from other weights
        save_checkpoint(vae, ckpt)
    ingest = _manifest_rows(layout, "ingest")
    retarget = _manifest_rows(layout, "retarget")
    shards = sorted({r["_shard_path"] for r in retarget.values()})
    if not shards:
        raise FileNotFoundError(f"no retargeted clips under {layout.root}; run `make shards` first")
    jobs = [ShardJob(sh, {c: (ingest.get(c, {}).get("text") or "") for c, r in retarget.items() if r["_shard_path"] == sh},
                     {c: ingest[c]["_shard_path"] for c, r in retarget.items() if r["_shard_path"] == sh and c in ingest})
            for sh in shards]
    store = Store(layout.store_dir, video_dim=s.video_dim)
    current = set(retarget)
    orphans = {c: ids for c, ids in store.model_ids().items() if c not in current}
    stale = sorted(c for c, (vae, vlm_id) in orphans.items() if vae != s.vae_id or (vlm_id or s.vlm_id) != s.vlm_id)
    if prune:
        store.delete_clips(sorted(orphans))
        s.pruned = len(orphans)
    elif stale:
        raise StoreError(f"{len(stale)} store rows belong to clips no longer in the retarget shards and were made "
                         f"with other models (e.g. {stale[0]}: {orphans[stale[0]][0]}); the store would mix two "
                         f"model generations. The store's tables were not changed: rerun with --prune to remove the orphans")
    # rows duplicated by builds that raced before the writer lock existed: every current clip is
    # re-embedded below, so its duplicated rows are dropped first and written once
    dupes = [c for c in store.duplicate_clip_ids() if c in current]
    store.delete_clips(dupes)
    s.deduplicated = len(dupes)
    all_ids = []
    failures: list[Failure] = []
    scenes: dict[str, list[float]] = {}  # scene_id -> bounds, each scene read once
    bar = tqdm(total=len(jobs), desc="embed shards", unit="shard", disable=not progress)
    for job, out in run_tasks(embed_shard, jobs, (str(ckpt), str(vlm_dir), sampling), executor, ray_address, num_cpus,
                              gpus_per_task="auto"):  # the VLM runs on the task's GPU when the cluster has them
        if isinstance(out, BaseException):  # the worker died
            out = ({}, [_shard_failure(job, Reason.WORKER_CRASHED, out)])
        res, shard_failures = out
        failures.extend(shard_failures)
        texts = job.texts
        rows, token_rows, video_rows = [], [], []
        for c in sorted(res):
            e, ig, rt = res[c], ingest.get(c, {}), retarget.get(c, {})
            rows.append({
                "clip_id": c, "dataset": rt.get("dataset"), "subset": rt.get("subset"), "sequence": rt.get("sequence"),
                "view": rt.get("view"), "start_s": ig.get("start_s"), "end_s": ig.get("end_s"), "fps": rt.get("fps"),
                "n_frames": rt.get("n_frames"), "text": texts.get(c, ""), "texts_json": json.dumps(ig.get("texts") or []),
                "source_sha256": ig.get("source_sha256"), "ingest_shard": rt.get("ingest_shard"),
                "retarget_shard": rt.get("shard"), "robot": rt.get("robot"), "body_model": rt.get("body_model"),
                "mpkpe_aligned_mean_m": rt.get("mpkpe_aligned_mean_m"), "foot_skate_cm_s": rt.get("foot_skate_cm_s"),
                "penetration_cm": rt.get("penetration_cm"), "stable": rt.get("stable"),
                "stability_reason": rt.get("stability_reason"), "vae_id": s.vae_id, "text_model": TEXT_MODEL_ID,
                "vlm_id": s.vlm_id if e["video_latent"] is not None else None, "video_frames": e["video_frames"],
                "motion_latent": e["pooled"].tolist(), "text_emb": e["text_emb"].tolist(),
                "video_latent": None if e["video_latent"] is None else e["video_latent"].tolist(),
                **scene_columns(layout, rt, scenes),
            })
            token_rows.append({"clip_id": c, "vae_id": s.vae_id, "n_tokens": e["n_tokens"], "tokens": e["tokens"].tolist()})
            if e["video_tokens"] is not None:
                video_rows.append({"clip_id": c, "vlm_id": s.vlm_id, "n_tokens": len(e["video_tokens"]),
                                   "tokens": e["video_tokens"].tolist()})
            else:
                s.clips_without_video += 1
        # one driver commits, shard by shard; token tables first, so a clip row implies its tokens
        store.upsert(MOTION_TOKENS, token_rows)
        if video_rows:
            store.upsert(VIDEO_TOKENS, video_rows)
        s.inserted += store.upsert(CLIPS, rows)
        all_ids.extend(res)
        bar.update(1)
    bar.close()
    write_ledger(layout.ledger(STAGE), failures)
    s.failures = len(failures)
    s.indexes = store.ensure_indexes()
    tag = "build-" + digest_of([s.vae_id, s.vlm_id, sorted(all_ids)])[:12]
    for t in (CLIPS, MOTION_TOKENS, VIDEO_TOKENS):
        store.tag(t, tag)
        s.versions[t] = store.version(t)
    s.clips = store.count(CLIPS)
    return s
