"""Train (later issue): thin modules that consume the store — flow-matching DiT from video latent to
motion latent, MoE teacher, diffusion student — with sharded distributed (torch DDP) training.
Not implemented yet: `python -m train` says so and exits non-zero.
"""
