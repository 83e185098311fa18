"""G1 motion-tracking environment in MuJoCo (CPU), one concept per module.

actuation (the model and its PD), motion_library (reference motions from the store), observations,
rewards, terminations, randomization, curriculum; tracking_env composes them into an rsl-rl VecEnv.
"""

import retarget  # noqa: E402,F401  - sets MUJOCO_GL (offscreen EGL) before mujoco is first imported
