"""Shared core of the RoboMirror data engine: on-disk layout, errors, atomic I/O, rotations.

Stage packages (`ingest`, `retarget`, `latents`, `catalog`, `train`, `deploy`) import from here;
nothing here imports a stage.
"""

__version__ = "0.1.0"

# Version of every on-disk format this code writes (shards, manifests, ledgers, sidecars).
# Readers refuse anything newer with `FormatVersionError`.
FORMAT_VERSION = 1
