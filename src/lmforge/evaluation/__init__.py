"""Evaluation: metrics as pure functions; perplexity and bits-per-byte of language models."""
