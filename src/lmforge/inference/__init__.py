"""Inference: sampling, KV-cached generation, loading trained runs."""
