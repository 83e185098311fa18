"""Ingest: Motion-X and Nymeria (video + human motion + text) into WebDataset shards.

Readers (`motionx`, `nymeria`) turn each source sequence into z-up, 30 fps human motion with its
texts and video; `clips` cuts 5 s clips; `stage` runs per sequence (a Ray task) and caches its
clips; `shards` packs them into published shards with a manifest; failures go to a ledger.
"""
