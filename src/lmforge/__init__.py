"""lmforge: build, train and apply language models on open datasets, end to end."""
__version__ = "0.1.0"
