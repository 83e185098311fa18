"""Latents: retargeted clips embedded into a LanceDB store keyed by clip id.

Here now: per-frame motion `features`, the `motion_vae` (tokens of width 256 + a pooled 256-d vector,
safetensors checkpoints with a content hash), `text` embeddings (all-MiniLM-L6-v2 shipped offline),
the validated, idempotent `store`, and the `pipeline` behind `python -m latents build`.
Not yet (issue 4 continues): the Qwen3-VL video latent, Ray tasks for the embedders, ANN/scalar
indexes and compaction, the HTML report and nearest-neighbour pages.
"""
