"""Tokenizers: train and load Hugging Face tokenizers (BPE, WordPiece, Unigram, char, byte); no torch."""
