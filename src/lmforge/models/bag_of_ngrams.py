"""A fastText-style classifier body (Joulin et al., 2017): the embeddings of a text's tokens and of its
hashed token n-grams, averaged by the head's mean pooling and mapped linearly to the labels. No hidden
layer, no order beyond the n-grams: fast, and on small topic or sentiment sets as strong as TF-IDF."""

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
    """Hash buckets shared by all n-grams of order 2 and more (fastText's -bucket; 2M there)."""

    def __post_init__(self) -> None:
        if self.vocab_size <= 0 or self.d_model <= 0 or self.buckets <= 0 or self.ngrams < 1:
            raise ValueError("vocab_size, d_model and buckets must be positive and ngrams at least 1")


PRESETS: dict[str, dict] = {
    "tiny": dict(d_model=64, buckets=131072),
    "small": dict(d_model=100),
    "medium": dict(d_model=300, ngrams=3, buckets=1048576),
}


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
        self.ngram_embed = nn.Embedding(config.buckets, config.d_model, sparse=True) if config.ngrams > 1 else None
        bound = 1.0 / config.d_model   # fastText's initialisation
        for table in (self.embed, self.ngram_embed):
            if table is not None:
                nn.init.uniform_(table.weight, -bound, bound)

    def hidden(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """(B, T, d_model): at each position the token's embedding plus those of the n-grams ending
        there, so mean pooling over the real positions averages the whole bag."""
        x = self.embed(tokens)
        for n in range(2, self.config.ngrams + 1):
            x = x + self.ngram_embed(ngram_buckets(tokens, n, self.config.buckets, self.config.vocab_size))
        return x

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else 0
