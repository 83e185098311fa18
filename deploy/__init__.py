"""Deploy (later issue): the 50 Hz robot runtime that runs the diffusion policy on the Unitree G1
from a video latent. Not implemented yet: `python -m deploy` says so and exits non-zero.
"""
