"""Deterministic, format-true sample corpus: Motion-X and Nymeria layouts from procedural motion, and the
G1 robot-motion corpora (Unitree LAFAN1 G1 CSV, BONES-SEED) from a procedural G1 walk (formats.py).

Synthetic data for the default run and the tests; never a measurement of real human motion.
"""
