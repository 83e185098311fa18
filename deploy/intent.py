"""The intent process: video (file or stream URL) -> VLM -> DiT (2 steps) -> motion latent, published.

Runs where the GPU is (here: this CPU). Frames are read with PyAV as they arrive (a file is paced at
its own frame times, as a camera would deliver it). Every `refresh_s` of video, the newest `window_s`
of frames goes through the store's VLM and the trained DiT, and the pooled motion latent is published
on LCM with its time, the model ids and the time each stage took. The first latent goes out as soon
as `min_window_s` of video has arrived. When the video ends, publishing stops: the robot runtime sees
the latent go stale and holds its safe pose.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robomirror.errors import RoboMirrorError
from robomirror.paths import DataLayout


class IntentError(RoboMirrorError):
    pass


@dataclass(frozen=True)
class IntentConfig:
    window_s: float = 2.0
    refresh_s: float = 0.5
    min_window_s: float = 0.5
    realtime: bool = True  # pace a file at its frame times (a stream is paced by its source)


class IntentModels:
    """The store's VLM and the DiT trained on it, loaded once."""

    def __init__(self, layout: DataLayout, vlm: str | None = None, dit_run: str | None = None) -> None:
        from catalog.nearest import find_dit_run
        from catalog.sql import store_models
        from latents.video import load_vlm, resolve_vlm_dir
        from robomirror.dit import load_trained

        models = store_models(layout)
        if models is None:
            raise IntentError(f"no latent store under {layout.root}: run `make latents` first")
        self.vae_id, self.vlm_id, _ = models
        if vlm is None and str(self.vlm_id).startswith("effnet-lite0"):
            vlm = "effnet-lite0"
        self.vlm = load_vlm(str(resolve_vlm_dir(vlm, layout.root / "cache" / "vlm")))
        if self.vlm.vlm_id != self.vlm_id:
            raise IntentError(f"the store's video latents come from {self.vlm_id}, the VLM given is {self.vlm.vlm_id}")
        run_dir = find_dit_run(layout, self.vae_id, self.vlm_id, dit_run)
        self.dit, self.flow, self.meta = load_trained(run_dir)
        self.dit_id = str(self.meta.get("dit_id") or run_dir.name)

    def latent(self, frames: np.ndarray, fps: float, view: str) -> tuple[np.ndarray, float, float]:
        """(pooled motion latent (D,), VLM ms, DiT ms)."""
        import torch

        from latents.video import VideoClip, embed_videos
        from robomirror.dit import reconstruct

        t0 = time.perf_counter()
        tokens, pooled = embed_videos(self.vlm, [VideoClip(frames, fps, view)])[0]
        t1 = time.perf_counter()
        t_m, d_m = self.dit.dit.cfg.motion_tokens, self.dit.dit.cfg.motion_dim
        video = torch.from_numpy(np.asarray(tokens, dtype=np.float32))[None]
        batch = {"clip_id": ["live"], "motion_tokens": torch.zeros(1, t_m, d_m),
                 "motion_mask": torch.ones(1, t_m, dtype=torch.bool), "video_tokens": video,
                 "video_mask": torch.ones(1, video.shape[1], dtype=torch.bool),
                 "video_latent": torch.from_numpy(np.asarray(pooled, dtype=np.float32))[None]}
        out = reconstruct(self.dit, batch, self.flow, seed=self.meta["config"]["seed"])[0].mean(0).numpy()
        return out.astype(np.float32), (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3


def frames_of(source: str, realtime: bool):
    """(time [s], RGB frame) as they arrive; a file is paced at its frame times when realtime."""
    import av

    try:
        container = av.open(source)
    except (av.error.FFmpegError, OSError) as e:
        raise IntentError(f"--video {source}: cannot open it ({type(e).__name__}: {e})") from e
    with container:
        if not container.streams.video:
            raise IntentError(f"--video {source}: no video stream")
        stream = container.streams.video[0]
        start = time.monotonic()
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i / float(stream.average_rate or 30)
            if realtime:
                lag = t - (time.monotonic() - start)
                if lag > 0:
                    time.sleep(lag)
            yield t, frame.to_ndarray(format="rgb24")


def run_intent(layout: DataLayout, video: str, view: str, url: str, cfg: IntentConfig = IntentConfig(),
               vlm: str | None = None, dit_run: str | None = None, ready=None, log=print) -> list[dict]:
    """Publish latents until the video ends; returns one row per latent (times and stage ms)."""
    import lcm

    from deploy.backends.lcm_backend import LATENT_CHANNEL, encode_latent
    from deploy.runtime import LatentSample

    models = IntentModels(layout, vlm, dit_run)
    lc = lcm.LCM(url)
    if ready is not None:
        ready.set()
    buf_t, buf_f, rows = [], [], []
    next_at = cfg.min_window_s
    t_decode = time.perf_counter()
    for t, frame in frames_of(video, cfg.realtime):
        buf_t.append(t)
        buf_f.append(frame)
        if t + 1e-9 < next_at:
            continue
        decode_ms = (time.perf_counter() - t_decode) * 1e3  # the window arriving (real-time pace) + decoding
        keep = [i for i, ti in enumerate(buf_t) if ti >= t - cfg.window_s]
        buf_t, buf_f = [buf_t[i] for i in keep], [buf_f[i] for i in keep]
        fps = (len(buf_t) - 1) / max(buf_t[-1] - buf_t[0], 1e-6) if len(buf_t) > 1 else 30.0
        latent, vlm_ms, dit_ms = models.latent(np.stack(buf_f), fps, view)
        sample = LatentSample(latent, 0.0, models.vae_id, models.vlm_id, models.dit_id, (decode_ms, vlm_ms, dit_ms))
        lc.publish(LATENT_CHANNEL, encode_latent(sample, int(time.time() * 1e6), int(t * 1e6)))
        rows.append({"video_s": round(t, 3), "window_ms": decode_ms, "vlm_ms": vlm_ms, "dit_ms": dit_ms,
                     "wall": time.time()})
        next_at = t + cfg.refresh_s
        t_decode = time.perf_counter()
    if not rows:
        raise IntentError(f"--video {video}: shorter than the first window ({cfg.min_window_s} s)")
    log(f"intent: {len(rows)} latents from {Path(video).name}; video ended, publishing stopped")
    return rows
