"""Deterministic, format-true sample corpus: Motion-X and Nymeria layouts from procedural motion.

Synthetic data for the default run and the tests; never a measurement of real human motion.
"""
