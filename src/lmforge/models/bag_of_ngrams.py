"""A fastText-style classifier body (Joulin et al., 2017): the embeddings of a text's tokens, of its
hashed token n-grams and (optionally) of each token's hashed character n-grams (Bojanowski et al.,
2017), averaged by the head's mean pooling and mapped linearly to the labels. No hidden layer, no order
beyond the n-grams: fast, and on small topic or sentiment sets as strong as TF-IDF."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

# odd multiplier of the rolling n-gram hash (int64 arithmetic wraps; the bucket is taken modulo)
_HASH_MULTIPLIER = 116049371


@dataclass
class BagConfig:
    vocab_size: int = 8192
    """Tokens in the vocabulary; must match the tokenizer (a word tokenizer by default)."""
    d_model: int = 100
    """Embedding size of tokens and n-grams (fastText's -dim)."""
    ngrams: int = 2
    """Longest token n-gram embedded (fastText's -wordNgrams): 1 is a bag of words, 2 adds bigrams."""
    buckets: int = 262144
    """Hash buckets shared by all token n-grams of order 2 and more and the character n-grams (fastText's
    -bucket; 2M there)."""
    min_char_ngram: int = 0
    """Shortest character n-gram of a token (fastText's -minn); 0: no character n-grams."""
    max_char_ngram: int = 0
    """Longest character n-gram of a token (fastText's -maxn)."""
    char_ngrams_per_token: int = 32
    """Character n-grams kept per vocabulary entry (the shortest first)."""

    def __post_init__(self) -> None:
        if self.vocab_size <= 0 or self.d_model <= 0 or self.buckets <= 0 or self.ngrams < 1:
            raise ValueError("vocab_size, d_model and buckets must be positive and ngrams at least 1")
        if self.min_char_ngram and not 0 < self.min_char_ngram <= self.max_char_ngram:
            raise ValueError("character n-grams need 0 < min_char_ngram <= max_char_ngram")


PRESETS: dict[str, dict] = {
    "tiny": dict(d_model=64, buckets=131072),
    "small": dict(d_model=100),
    "medium": dict(d_model=300, ngrams=3, buckets=1048576),
}


def fnv1a(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes (the hash fastText gives its character n-grams)."""
    h = 2166136261
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def char_ngram_table(tokens: list[str], low: int, high: int, buckets: int, width: int) -> torch.Tensor:
    """(len(tokens), width) int64: the buckets of each token's character n-grams of `low`..`high` characters
    within "<token>" (the brackets mark its start and end), -1 padded. Empty strings (special tokens) get none."""
    table = torch.full((len(tokens), width), -1, dtype=torch.int64)
    for row, token in enumerate(tokens):
        if not token:
            continue
        word = f"<{token}>"
        grams = [word[i:i + n] for n in range(low, high + 1) for i in range(len(word) - n + 1)]
        ids = [fnv1a(g) % buckets for g in grams[:width]]
        table[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return table


def ngram_buckets(tokens: Tensor, n: int, buckets: int, start_id: int) -> Tensor:
    """(B, T) bucket of the n-gram ending at each position; positions before the text read `start_id`."""
    padded = torch.cat([tokens.new_full((tokens.size(0), n - 1), start_id), tokens], dim=1)   # (B, T + n - 1)
    T = tokens.size(1)
    key = padded[:, :T].clone()
    for offset in range(1, n):
        key = key * _HASH_MULTIPLIER + padded[:, offset:offset + T] + offset
    return torch.remainder(key, buckets)


class BagOfNgrams(nn.Module):
    def __init__(self, config: BagConfig):
        super().__init__()
        self.config = config
        # sparse: a batch touches a few hundred of the table's rows, and only those get gradients and updates
        self.embed = nn.Embedding(config.vocab_size, config.d_model, sparse=True)
        hashed = config.ngrams > 1 or config.min_char_ngram   # token and character n-grams share the buckets
        self.ngram_embed = nn.Embedding(config.buckets, config.d_model, sparse=True) if hashed else None
        # each vocabulary entry's character n-gram buckets (filled by read_vocabulary; saved with the weights)
        self.register_buffer("char_ngrams", torch.full((config.vocab_size, config.char_ngrams_per_token), -1,
                                                       dtype=torch.int64) if config.min_char_ngram else
                             torch.zeros(0, dtype=torch.int64))
        bound = 1.0 / config.d_model   # fastText's initialisation
        for table in (self.embed, self.ngram_embed):
            if table is not None:
                nn.init.uniform_(table.weight, -bound, bound)

    def read_vocabulary(self, tokens: list[str]) -> None:
        """Give the model its vocabulary's strings (special tokens as ""), for the character n-grams."""
        c = self.config
        if c.min_char_ngram:
            self.char_ngrams.copy_(char_ngram_table(tokens[:c.vocab_size] + [""] * (c.vocab_size - len(tokens)),
                                                    c.min_char_ngram, c.max_char_ngram, c.buckets,
                                                    c.char_ngrams_per_token))

    def hidden(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """(B, T, d_model): at each position the token's embedding plus those of the n-grams ending
        there, so mean pooling over the real positions averages the whole bag."""
        x = self.embed(tokens)
        for n in range(2, self.config.ngrams + 1):
            x = x + self.ngram_embed(ngram_buckets(tokens, n, self.config.buckets, self.config.vocab_size))
        if self.config.min_char_ngram:   # once per distinct token of the batch, then spread to positions
            distinct, where = torch.unique(tokens, return_inverse=True)
            grams = self.char_ngrams[distinct]                                    # (U, K)
            found = (grams >= 0).unsqueeze(-1).to(x.dtype)
            x = x + (self.ngram_embed(grams.clamp_min(0)) * found).sum(dim=1)[where]
        return x

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else 0
