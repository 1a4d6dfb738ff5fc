"""Data: manifests, audio I/O, datasets, duration-bucketed batching and collation."""
