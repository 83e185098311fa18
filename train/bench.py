"""`make bench` for train: what only a run can tell, each figure beside its baseline from the same run.

- DiT training samples/s at 1 and 2 Ray workers (DDP, gloo) at the same global batch: the scaling
  efficiency is samples/s(2) / (2 x samples/s(1)) on this machine's 2 cores;
- 2-step DiT sampling latency, tiny preset and paper preset (12 x 1024, 8 heads) on this CPU, and on a
  GPU in bf16 when one is present;
- evaluator throughput (clips/s through VAE decode + motion encoder);
- with `--corpus`, the Real / ours / shuffled table on a larger synthetic sample for both video
  encoders (the tiny random Qwen3-VL and ImageNet EfficientNet-Lite0): synthetic-sample figures.
Shapes are the store's: 30 x 256 motion tokens, 10 video tokens a clip.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from ingest.sample import DEMO_MOTIONX_SHORT, DEMO_TEST_FRACTION
from robomirror.dit import DiTConfig, NormalizedDiT, reconstruct
from robomirror.flow import FlowConfig, noised, sample_tau, target, tau_buckets
from robomirror.trainer import TrainConfig, fit


@dataclass
class SyntheticDiTTask:
    """The DiT task's loss on random store-shaped tensors (throughput only: not a measurement of quality)."""

    n: int = 256
    video_dim: int = 64
    name: str = "dit-bench"

    def build_model(self):
        return NormalizedDiT(DiTConfig.preset("tiny", video_dim=self.video_dim))

    def dataset(self):
        g = torch.Generator().manual_seed(0)
        return [(torch.randn(30, 256, generator=g), torch.randn(10, self.video_dim, generator=g)) for _ in range(self.n)]

    def collate(self, items):
        return torch.stack([m for m, _ in items]), torch.stack([v for _, v in items])

    def loss(self, model, batch, gen, rows, global_batch):
        motion, video = batch
        flow = FlowConfig()
        noise = torch.randn(global_batch, 30, 256, generator=gen)[rows]
        tau = sample_tau(global_batch, flow, np.random.default_rng(int(torch.randint(2**62, (1,), generator=gen))))[rows]
        mask = torch.ones(len(motion), 10, dtype=torch.bool)
        pred = model(noised(motion, noise, tau), tau_buckets(tau, flow), video, mask, video.mean(1))
        return ((pred - target(motion, noise, flow)) ** 2).mean(), {}


def training_throughput(workers: int, steps: int = 20, batch: int = 64) -> float:
    with tempfile.TemporaryDirectory(prefix="robomirror-bench-") as d:
        cfg = TrainConfig(steps=steps, global_batch=batch, ckpt_every=steps, log_every=steps, workers=workers,
                          executor="ray")
        return fit(SyntheticDiTTask(), cfg, Path(d)).samples_per_s


def sampling_latency_ms(preset: str, device: str = "cpu", repeats: int = 20) -> tuple[float, float]:
    """(p50, p99) ms of 2 Euler steps for one clip (batch 1), after warm-up."""
    video_dim = 2560 if preset == "paper" else 64
    model = NormalizedDiT(DiTConfig.preset(preset, video_dim=video_dim)).to(device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = model.to(dtype)
    batch = {"clip_id": ["q"], "motion_tokens": torch.zeros(1, 30, 256, device=device, dtype=dtype),
             "motion_mask": torch.ones(1, 30, dtype=torch.bool, device=device),
             "video_tokens": torch.randn(1, 10, video_dim, device=device, dtype=dtype),
             "video_mask": torch.ones(1, 10, dtype=torch.bool, device=device),
             "video_latent": torch.randn(1, video_dim, device=device, dtype=dtype)}
    times = []
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            _ = reconstruct(model, batch, FlowConfig(), seed=0)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(1000 * (time.perf_counter() - t0))
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def evaluator_throughput(n: int = 64) -> float:
    from latents.motion_vae import MotionVAE, VAEConfig
    from train.evaluator import EvaluatorConfig, MotionTextEncoder, frame_mask_from_tokens

    vae, ev = MotionVAE(VAEConfig()).eval(), MotionTextEncoder(EvaluatorConfig()).eval()
    tokens, mask = torch.randn(n, 30, 256), torch.ones(n, 30, dtype=torch.bool)
    with torch.no_grad():
        ev.embed_motion(vae.decode(tokens[:4]), frame_mask_from_tokens(mask[:4], 5))
        t0 = time.perf_counter()
        ev.embed_motion(vae.decode(tokens), frame_mask_from_tokens(mask, 5))
    return n / (time.perf_counter() - t0)


def corpus_tables(console: Console, motionx: int, nymeria: int, short: int, steps: int, test_fraction: float) -> None:
    """Real / ours / shuffled on a larger synthetic sample, once per video encoder. The sample is the
    demo's (`python -m ingest sample`: short one-clip Motion-X sequences with video as the bulk) and so is
    the test fraction: at least 64 test clips with video, R@k in pools of 32 with room for random pools
    (see train/metrics.py); fewer and the table says it is not a result."""
    from ingest.config import IngestConfig
    from ingest.pipeline import run_ingest
    from ingest.sample.corpus import SampleConfig, build_sample
    from latents.pipeline import run_latents
    from retarget.config import RetargetConfig
    from retarget.pipeline import run_retarget
    from robomirror.paths import DataLayout
    from train.data import SplitConfig
    from train.pipeline import TrainRunConfig, run_train
    from train.report import print_summary

    with tempfile.TemporaryDirectory(prefix="robomirror-bench-corpus-") as d:
        base = DataLayout(Path(d) / "qwen3vl")
        sources = build_sample(base.sample_dir, SampleConfig(seed=11, n_motionx=motionx, n_nymeria=nymeria,
                                                                   n_motionx_short=short),
                               progress=True)
        run_ingest(base, sources, IngestConfig(), executor="ray", progress=True)
        run_retarget(base, RetargetConfig(), executor="ray", progress=True)
        import shutil

        eff = DataLayout(Path(d) / "effnet")
        shutil.copytree(base.root / "shards", eff.root / "shards")
        for layout, encoder in ((base, None), (eff, "effnet-lite0")):
            run_latents(layout, vlm=encoder, executor="ray", progress=True)
            s = run_train(layout, TrainRunConfig(dit_steps=steps, evaluator_steps=steps, global_batch=16,
                                                 split=SplitConfig(0, test_fraction)), progress=False)
            console.print(f"[bold]video encoder: {encoder or 'tiny random Qwen3-VL (plumbing)'}[/bold] — synthetic "
                          f"sample of {motionx} Motion-X + {short} short Motion-X + {nymeria} Nymeria sequences, "
                          f"test fraction {test_fraction}: {s.n_test} test clips with video")
            print_summary(s, console)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.bench", description=__doc__)
    ap.add_argument("--corpus", action="store_true", help="also train on a larger synthetic sample, both encoders")
    ap.add_argument("--motionx", type=int, default=12, help="Motion-X sequences of every subset (the demo's)")
    ap.add_argument("--motionx-short", type=int, default=DEMO_MOTIONX_SHORT,
                    help="short one-clip Motion-X sequences with video (the demo's: the evaluation's bulk)")
    ap.add_argument("--nymeria", type=int, default=3)
    ap.add_argument("--test-fraction", type=float, default=DEMO_TEST_FRACTION,
                    help="the demo's: >= 64 test clips with video on the demo's sample")
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args(argv)
    console = Console(width=150)
    one, two = training_throughput(1), training_throughput(2)
    t = Table(title="DiT training (tiny preset, store shapes, random tensors), Ray Train DDP gloo, global batch 64")
    for c in ("workers", "samples/s", "x 1 worker", "scaling efficiency"):
        t.add_column(c, justify="right")
    t.add_row("1", f"{one:.0f}", "1.00", "1.00")
    t.add_row("2", f"{two:.0f}", f"{two / one:.2f}", f"{two / (2 * one):.2f}")
    console.print(t)
    lat = Table(title="DiT sampling, 2 Euler steps, one clip")
    for c in ("preset", "device", "p50 ms", "p99 ms"):
        lat.add_column(c, justify="right")
    for preset in ("tiny", "paper"):
        p50, p99 = sampling_latency_ms(preset, repeats=20 if preset == "tiny" else 5)
        lat.add_row(preset, "cpu (fp32)", f"{p50:.1f}", f"{p99:.1f}")
        if torch.cuda.is_available():
            p50, p99 = sampling_latency_ms(preset, "cuda")
            lat.add_row(preset, "cuda (bf16)", f"{p50:.1f}", f"{p99:.1f}")
    console.print(lat)
    console.print(f"evaluator: {evaluator_throughput():.0f} clips/s (VAE decode + motion encoder, CPU)")
    if args.corpus:
        corpus_tables(console, args.motionx, args.nymeria, args.motionx_short, args.steps, args.test_fraction)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
