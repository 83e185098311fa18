"""Retarget: human motion from the ingest shards -> Unitree G1 joint trajectories.

Robot facts live in `g1`, the two kinematics backends (MuJoCo, pinocchio) in `robot`; a clip goes
`correspondence` -> `shape_fit` -> `contacts` -> `ik` (pink) -> grounding -> `metrics` and
`stability`; `pipeline` runs one Ray task per ingest shard and publishes retarget shards in the
BeyondMimic motion layout; `interop` imports/exports PHC/PBHC, GMR and BeyondMimic files through a
restricted unpickler; `render` writes side-by-side debug videos.
"""

import os

# MuJoCo picks its OpenGL backend when it is first imported: headless EGL unless the user chose.
os.environ.setdefault("MUJOCO_GL", "egl")
