"""Catalog: the data root queried with SQL (DuckDB), read-only.

Today it exposes the ingest shard manifests (`clips`) and failure ledgers (`failures`); the
latent-store issue adds the LanceDB tables and nearest-latent retrieval.
"""
