"""Retarget (next issue): SMPL-X / SMPL / XSens human motion from the ingest shards to Unitree G1
joint trajectories — PHC-style shape fit, pink IK, grounding and contacts, CoM/CoP stability
verdicts and quality metrics — written to retarget shards in the BeyondMimic motion layout.
Not implemented yet: `python -m retarget` says so and exits non-zero.
"""
