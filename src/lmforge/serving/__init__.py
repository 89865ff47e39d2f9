"""Serving runs over HTTP: an OpenAI-compatible server with continuous batching, and its playground page.
Reads runs through inference/ and tokenization/ only (never training/ or commands/)."""
