"""Video latents with Qwen3-VL: last-layer hidden states over the video tokens of the paper's prompt.

A clip's video is sampled at `VideoSampling.fps` (clamped to [min_frames, max_frames]) and put in
a one-turn chat with the prompt for its view (RoboMirror's prompts, below). The prompt comes
before the video: the language model is causal, so a prompt after the video could not change the
video tokens' hidden states (a test checks that the two prompts give different latents). The latent is the
sequence of last-layer hidden states at the `<|video_pad|>` positions (stored float16) and its mean
(float32, width = the model's hidden size: 2560 for Qwen3-VL-4B).

Real weights load from a local directory (`--vlm PATH` or $ROBOMIRROR_VLM) with `local_files_only`.
Without one, a tiny randomly initialised Qwen3-VL is built from a config with a fixed seed, with
its own word-level tokenizer and the real processor classes, and saved under the cache. Every row
it produces says `tiny-random-qwen3vl-<hash>`: that is plumbing, not a measurement.

How the prompt expands differs between transformers versions (Qwen3-VL adds a timestamp and a
vision start/end pair per temporal patch). So every batch is checked to have exactly one video-pad
token per vision token the vision tower produces, and transformers is pinned.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from robomirror.errors import RoboMirrorError

VLM_ENV = "ROBOMIRROR_VLM"
TINY_PREFIX = "tiny-random-qwen3vl"
TINY_SEED = 0
TINY_NOTE = "randomly initialised: plumbing, not a measurement"
ID_FILE = "robomirror_vlm.json"  # written next to the tiny model: its id and how it was made
PROMPTS = {  # RoboMirror's prompts, per view
    "egocentric": "Please describe the motion of the first-person individual in the egocentric video",
    "third_person": "Please describe the motion in the video",
}
VIEWS = tuple(PROMPTS)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>", "[UNK]")
# A Qwen-style chat template (content items in the order given, as in Qwen3-VL's own).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class VideoLatentError(RoboMirrorError):
    """The VLM could not be loaded, or a prompt did not expand as the vision tower expects."""


@dataclass(frozen=True)
class VideoSampling:
    """Which frames of a clip the VLM sees."""

    fps: float = 2.0  # frames sampled per second of video (Qwen3-VL's default)
    min_frames: int = 4
    max_frames: int = 32
    batch_size: int = 4  # clips per forward pass


def sample_indices(n_frames: int, video_fps: float, cfg: VideoSampling) -> np.ndarray:
    """Evenly spaced frame indices: duration x cfg.fps frames, clamped, an even count (temporal patch 2)."""
    if n_frames < 1 or video_fps <= 0:
        raise VideoLatentError(f"a video needs >= 1 frame and fps > 0, got {n_frames} frames at {video_fps} fps")
    n = int(round(n_frames / video_fps * cfg.fps))
    n = max(cfg.min_frames, min(cfg.max_frames, n))
    n -= n % 2
    return np.linspace(0, n_frames - 1, max(n, 2)).round().astype(int)


# --- the tiny offline model --------------------------------------------------------------------

def _tiny_tokenizer():
    """A word-level tokenizer over the prompts, chat roles and timestamp characters."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for p in PROMPTS.values() for w in p.lower().split()}
                   | {"user", "assistant", "system", "seconds", "the", "a", "person", "walks", "runs", "jumps"})
    chars = list("0123456789") + list("<>.,:!?'\"-()[]/")
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *words, *chars])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="<|endoftext|>",
                                   eos_token="<|im_end|>", padding_side="right",
                                   extra_special_tokens=list(SPECIAL_TOKENS[1:7]))


def _tiny_config(tokenizer):
    from transformers import Qwen3VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return Qwen3VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0,
                                          "mrope_section": [4, 2, 2], "mrope_interleaved": True},
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                           temporal_patch_size=2, spatial_merge_size=2, out_hidden_size=64,
                           num_position_embeddings=64, deepstack_visual_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )


def build_tiny_vlm(out_dir: Path, seed: int = TINY_SEED) -> Path:
    """Build, seed and save the tiny Qwen3-VL (model + tokenizer + processor) to `out_dir`, atomically."""
    import shutil
    import tempfile

    import torch
    from transformers import Qwen2VLImageProcessor, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tokenizer = _tiny_tokenizer()
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(_tiny_config(tokenizer)).eval()
    frame_px = 128 * 128
    video = Qwen3VLVideoProcessor(size={"shortest_edge": 4 * 32 * 32, "longest_edge": 32 * frame_px},
                                  patch_size=16, temporal_patch_size=2, merge_size=2, cap_pixels_per_frame=False)
    image = Qwen2VLImageProcessor(size={"shortest_edge": 32 * 32, "longest_edge": frame_px}, patch_size=16,
                                  temporal_patch_size=2, merge_size=2)
    processor = Qwen3VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                                 chat_template=CHAT_TEMPLATE)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        h = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()[:12]
        (tmp / ID_FILE).write_text(json.dumps({"vlm_id": f"{TINY_PREFIX}-{h}", "seed": seed,
                                               "note": TINY_NOTE}))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def resolve_vlm_dir(flag: str | os.PathLike | None, cache_dir: Path) -> Path:
    """The flag, else $ROBOMIRROR_VLM, else the tiny model in `cache_dir` (built on first use)."""
    path = flag or os.environ.get(VLM_ENV)
    from latents.video_effnet import ENCODER_NAME, is_spec
    from latents.video_effnet import spec as effnet_spec

    if path and (str(path) == ENCODER_NAME or is_spec(str(path))):  # the ImageNet EfficientNet-Lite0 encoder
        return Path(effnet_spec() if str(path) == ENCODER_NAME else str(path))
    if path:
        p = Path(path).expanduser().resolve()
        if not (p / "config.json").is_file():
            raise VideoLatentError(f"--vlm {p}: expected a local Qwen3-VL directory with config.json "
                                   "(e.g. a snapshot of Qwen/Qwen3-VL-4B-Instruct); none there")
        return p
    tiny = Path(cache_dir) / TINY_PREFIX
    if not (tiny / ID_FILE).is_file():
        build_tiny_vlm(tiny)
    return tiny


def vlm_id(path: Path) -> str:
    """`tiny-random-qwen3vl-<weights hash>` for the tiny model; `<dir name>@<config hash>` for real weights."""
    marker = Path(path) / ID_FILE
    if marker.is_file():
        return json.loads(marker.read_text())["vlm_id"]
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors.index.json", "preprocessor_config.json"):
        if (Path(path) / name).is_file():
            h.update((Path(path) / name).read_bytes())
    return f"{Path(path).name}@{h.hexdigest()[:12]}"


def is_tiny(vlm_id: str | None) -> bool:
    return (vlm_id or "").startswith(TINY_PREFIX)


def vlm_label(vlm_id: str | None) -> str:
    """The id as outputs show it: the tiny model always says what it is."""
    return f"{vlm_id} ({TINY_NOTE})" if is_tiny(vlm_id) else str(vlm_id)


@dataclass
class VLM:
    model: object
    processor: object
    vlm_id: str
    hidden_size: int
    device: str

    @property
    def tiny(self) -> bool:
        return is_tiny(self.vlm_id)


@lru_cache(maxsize=2)
def load_vlm(path: str) -> VLM:
    """Processor + model from a local directory only (no hub); on a GPU when one is present. An
    `effnet-lite0:` spec loads the EfficientNet-Lite0 encoder instead (latents/video_effnet.py)."""
    from latents.video_effnet import is_spec, load_effnet

    if is_spec(path):
        return load_effnet(path)
    import torch
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = Qwen3VLForConditionalGeneration.from_pretrained(
            path, local_files_only=True, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    except (OSError, ValueError, ImportError) as e:
        raise VideoLatentError(f"could not load a Qwen3-VL from {path}: {e}") from e
    model.eval().to(device)
    return VLM(model, processor, vlm_id(Path(path)), int(model.config.text_config.hidden_size), device)


# --- embedding ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoClip:
    frames: np.ndarray  # (N, H, W, 3) uint8, every decoded frame
    fps: float
    view: str  # "egocentric" | "third_person"


def prompt_for(view: str) -> str:
    if view not in PROMPTS:
        raise VideoLatentError(f"view must be one of {VIEWS}, got {view!r}")
    return PROMPTS[view]


def embed_videos(vlm: VLM, clips: list[VideoClip], cfg: VideoSampling = VideoSampling()) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clip: (video tokens (n, D) float16, pooled (D,) float32), in batches of cfg.batch_size."""
    import torch
    from transformers.video_utils import VideoMetadata

    from latents import video_effnet

    if isinstance(vlm, video_effnet.EffNetEncoder):
        return video_effnet.embed_videos(vlm, clips, cfg)

    for c in clips:  # every clip's view is checked before any model work
        prompt_for(c.view)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    proc = vlm.processor
    merge = int(proc.video_processor.merge_size)
    for b in range(0, len(clips), cfg.batch_size):
        batch = clips[b:b + cfg.batch_size]
        texts, videos, metas = [], [], []
        for c in batch:
            idx = sample_indices(len(c.frames), c.fps, cfg)
            messages = [{"role": "user", "content": [{"type": "text", "text": prompt_for(c.view)}, {"type": "video"}]}]
            texts.append(proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            videos.append(np.ascontiguousarray(c.frames[idx]))
            metas.append(VideoMetadata(total_num_frames=len(c.frames), fps=float(c.fps), frames_indices=idx.tolist(),
                                       height=c.frames.shape[1], width=c.frames.shape[2]))
        inputs = proc(text=texts, videos=videos, video_metadata=metas, do_sample_frames=False, padding=True,
                      return_tensors="pt")
        ids = inputs["input_ids"]
        n_vision = (inputs["video_grid_thw"].prod(-1) // merge**2).tolist()
        n_pad = (ids == vlm.model.config.video_token_id).sum(-1).tolist()
        if n_pad != n_vision:
            import transformers

            raise VideoLatentError(f"the expanded prompts have {n_pad} video-pad tokens but the vision tower makes "
                                   f"{n_vision} tokens (transformers {transformers.__version__}; this code is tested "
                                   "with the version pinned in requirements.txt)")
        inputs = {k: v.to(vlm.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            hidden = vlm.model.model(**inputs).last_hidden_state
        mask = (inputs["input_ids"] == vlm.model.config.video_token_id)
        for i in range(len(batch)):
            tok = hidden[i][mask[i]].float().cpu().numpy()
            out.append((tok.astype(np.float16), tok.mean(0).astype(np.float32)))
    return out
