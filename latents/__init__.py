"""Latents (later issue): clips embedded by the motion VAE (robot motion), Qwen3-VL (video) and a
text encoder into a LanceDB store keyed by clip id, with provenance and quality verdicts.
Not implemented yet: `python -m latents` says so and exits non-zero.
"""
