"""The Qwen3-VL video path with the tiny offline model: processor + model + pooling, both prompts,
save/load from a local directory, the one-video-pad-per-vision-token check."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from latents.video import (
    PROMPTS,
    TINY_PREFIX,
    VideoClip,
    VideoLatentError,
    VideoSampling,
    build_tiny_vlm,
    embed_videos,
    load_vlm,
    resolve_vlm_dir,
    sample_indices,
    vlm_id,
)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return resolve_vlm_dir(None, tmp_path_factory.mktemp("cache"))


def _clip(seconds: float, view: str, seed: int = 0, fps: float = 30.0) -> VideoClip:
    """A moving bright square on noise: frames differ, so the latent depends on them."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    frames = (rng.random((n, 128, 128, 3)) * 60).astype(np.uint8)
    for t in range(n):
        x = int(10 + 90 * t / max(n - 1, 1))
        frames[t, 50:80, x:x + 30] = 230
    return VideoClip(frames, fps, view)


def test_the_tiny_model_is_seeded_and_labelled(tiny_dir, tmp_path):
    again = build_tiny_vlm(tmp_path / "again")
    assert vlm_id(again) == vlm_id(tiny_dir) and vlm_id(tiny_dir).startswith(TINY_PREFIX + "-")
    vlm = load_vlm(str(tiny_dir))
    assert vlm.tiny and vlm.hidden_size == 64 and vlm.device in ("cpu", "cuda")
    assert type(vlm.processor).__name__ == "Qwen3VLProcessor"
    assert type(vlm.processor.video_processor).__name__ == "Qwen3VLVideoProcessor"
    assert type(vlm.model).__name__ == "Qwen3VLForConditionalGeneration"


def test_both_prompts_end_to_end(tiny_dir):
    vlm = load_vlm(str(tiny_dir))
    third, ego = _clip(3.0, "third_person"), _clip(3.0, "egocentric")
    (t_tok, t_pool), (e_tok, e_pool) = embed_videos(vlm, [third, ego])
    # 3 s at 2 fps = 6 frames -> 3 temporal patches x (128/16)^2 patches / 2x2 merge = 48 vision tokens
    assert t_tok.shape == e_tok.shape == (48, 64) and t_tok.dtype == np.float16
    assert t_pool.shape == (64,) and t_pool.dtype == np.float32
    np.testing.assert_allclose(t_pool, t_tok.astype(np.float32).mean(0), atol=2e-3)
    assert np.abs(t_pool - e_pool).max() > 1e-4  # same frames, other prompt: the text reaches the video tokens
    for prompt in PROMPTS.values():
        text = vlm.processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "text", "text": prompt}, {"type": "video"}]}],
            tokenize=False, add_generation_prompt=True)
        assert prompt in text and text.count("<|video_pad|>") == 1 and text.index(prompt) < text.index("<|video_pad|>")


def test_frames_change_the_latent_and_a_batch_equals_single_clips(tiny_dir):
    vlm = load_vlm(str(tiny_dir))
    a, b = _clip(2.0, "third_person", seed=1), _clip(5.0, "egocentric", seed=2)
    batched = embed_videos(vlm, [a, b], VideoSampling(batch_size=2))
    single = [embed_videos(vlm, [c], VideoSampling(batch_size=1))[0] for c in (a, b)]
    for (bt, bp), (st, sp) in zip(batched, single, strict=True):
        assert bt.shape == st.shape
        np.testing.assert_allclose(bp, sp, atol=1e-4)
    other = embed_videos(vlm, [_clip(2.0, "third_person", seed=9)])[0][1]
    assert np.abs(other - single[0][1]).max() > 1e-4


def test_a_local_directory_loads_with_local_files_only(tiny_dir, tmp_path, monkeypatch):
    moved = tmp_path / "my-qwen3-vl"
    shutil.copytree(tiny_dir, moved)
    monkeypatch.setenv("ROBOMIRROR_VLM", str(moved))
    assert resolve_vlm_dir(None, tmp_path / "unused") == moved.resolve()
    clip = _clip(2.0, "third_person")
    got = embed_videos(load_vlm(str(moved.resolve())), [clip])[0][1]
    want = embed_videos(load_vlm(str(tiny_dir)), [clip])[0][1]
    np.testing.assert_allclose(got, want, atol=1e-6)
    with pytest.raises(VideoLatentError, match="expected a local Qwen3-VL directory with config.json"):
        resolve_vlm_dir(tmp_path / "nowhere", tmp_path)


def test_a_prompt_that_expands_wrongly_is_refused(tiny_dir, monkeypatch):
    vlm = load_vlm(str(tiny_dir))
    proc = vlm.processor
    real = type(proc).replace_video_token
    monkeypatch.setattr(proc, "replace_video_token",
                        lambda *a, **k: real(proc, *a, **k).replace("<|video_pad|>", "", 1))
    with pytest.raises(VideoLatentError, match="video-pad tokens but the vision tower makes"):
        embed_videos(vlm, [_clip(2.0, "third_person")])


def test_sampling_and_views():
    idx = sample_indices(150, 30.0, VideoSampling(fps=2.0))
    assert len(idx) == 10 and idx[0] == 0 and idx[-1] == 149 and np.all(np.diff(idx) > 0)
    assert len(sample_indices(3000, 30.0, VideoSampling(fps=2.0, max_frames=32))) == 32
    assert len(sample_indices(10, 30.0, VideoSampling(fps=2.0, min_frames=4))) == 4
    with pytest.raises(VideoLatentError, match="fps > 0"):
        sample_indices(10, 0.0, VideoSampling())
    with pytest.raises(VideoLatentError, match="view must be one of"):
        embed_videos(None, [_clip(1.0, "overhead")])
