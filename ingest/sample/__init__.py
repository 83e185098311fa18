"""Deterministic, format-true sample corpus: Motion-X and Nymeria layouts from procedural motion, and the
G1 robot-motion corpora (Unitree LAFAN1 G1 CSV, BONES-SEED) from a procedural G1 walk (formats.py).

Synthetic data for the default run and the tests; never a measurement of real human motion.
"""

# The demo's sample (issue 21): enough short Motion-X sequences with video (one clip each, corpus.py
# SHORT_SUBSET) that the demo's split at DEMO_TEST_FRACTION (`train run --test-fraction`) holds >= 64
# test clips with video, so R-precision in pools of 32 is a measurement. `python -m ingest sample`
# and `python -m train.bench --corpus` use them; the tests' SampleConfig leaves the short sequences out.
DEMO_MOTIONX_SHORT = 190
DEMO_TEST_FRACTION = 0.35
