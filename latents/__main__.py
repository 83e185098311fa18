"""`python -m latents`: embed retargeted clips (motion VAE, Qwen3-VL video, text) into the LanceDB store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from latents.video import VideoSampling, vlm_label
from robomirror.errors import RoboMirrorError
from robomirror.paths import ENV_DATA_ROOT, DataLayout, resolve_data_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m latents", description=__doc__)
    ap.add_argument("--data-root", help=f"data root (default ${ENV_DATA_ROOT} or ./data)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train (or load) the motion VAE and upsert every clip into the store")
    b.add_argument("--vae", help="a motion VAE checkpoint directory to use instead of training")
    b.add_argument("--steps", type=int, default=400, help="VAE training steps")
    b.add_argument("--vlm", help="a local Qwen3-VL directory (default $ROBOMIRROR_VLM, else the tiny random "
                                 "model built offline: plumbing, not a measurement)")
    b.add_argument("--video-encoder", choices=["qwen3vl", "effnet-lite0"], default="qwen3vl",
                   help="qwen3vl: --vlm (or the tiny random one); effnet-lite0: ImageNet EfficientNet-Lite0 frame "
                        "features, the one real pretrained encoder offline (a store holds one encoder)")
    b.add_argument("--video-fps", type=float, default=VideoSampling.fps, help="frames sampled per second of video")
    b.add_argument("--max-frames", type=int, default=VideoSampling.max_frames, help="at most this many frames per clip")
    b.add_argument("--executor", choices=["ray", "serial"], default="ray")
    b.add_argument("--ray-address", default=None)
    b.add_argument("--num-cpus", type=int, default=None)
    b.add_argument("--prune", action="store_true",
                   help="remove store rows of clips no longer in the retarget shards (needed when their models differ)")
    sub.add_parser("compact", help="optimise the store's tables and remove old versions")
    args = ap.parse_args(argv)
    layout = DataLayout(resolve_data_root(args.data_root))
    if args.cmd == "compact":
        from latents.store import Store
        from robomirror.writer_lock import DataRootBusy, writer_lock

        try:
            with writer_lock(layout.root, "latents compact"):
                for name, (before, after) in Store(layout.store_dir).compact().items():
                    print(f"{name}: {before} versions -> {after}")
        except DataRootBusy as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    from latents.motion_vae import VAEConfig
    from latents.pipeline import run_latents

    try:
        s = run_latents(layout, Path(args.vae) if args.vae else None, VAEConfig(feature_dim=148, steps=args.steps),
                        args.executor, args.ray_address, args.num_cpus,
                        "effnet-lite0" if args.video_encoder == "effnet-lite0" else args.vlm,
                        VideoSampling(fps=args.video_fps, max_frames=args.max_frames), progress=True,
                        prune=args.prune)
    except (RoboMirrorError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"store: {s.store}  clips: {s.clips} ({s.inserted} new)  versions: {s.versions}  indexes: {s.indexes}")
    if s.vae_trained:
        print(f"motion VAE {s.vae_id}: final train loss {s.final_loss:.4f}; held-out joint error "
              f"{s.heldout_joint_err_rad:.4f} rad (mean-pose baseline {s.heldout_baseline_err_rad:.4f} rad), keypoints "
              f"{100 * s.heldout_keypoint_err_m:.1f} cm (baseline {100 * s.heldout_baseline_keypoint_err_m:.1f} cm)")
    else:
        print(f"motion VAE {s.vae_id} (loaded)")
    print(f"video: {vlm_label(s.vlm_id)}, latent width {s.video_dim}; clips without video: {s.clips_without_video}")
    print(f"ledger: {layout.ledger('latents')}  ({s.failures} failures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
