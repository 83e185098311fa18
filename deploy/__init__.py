"""Deploy: video -> action on the Unitree G1.

The robot side (runtime, safety, lowcmd, backends.base, backends.lcm_backend, lcm_types) imports only
numpy, onnxruntime, lcm and robomirror.g1_contract, so it installs on a Jetson from
requirements-jetson.txt. The intent side (intent.py: video -> VLM -> DiT -> motion latent) and the
MuJoCo sim backend need the training stack and run where a GPU (or this CPU) is.
"""
