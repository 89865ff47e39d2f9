"""Data: read raw sources, clean, filter, deduplicate and write documents; token shards (no torch)."""
