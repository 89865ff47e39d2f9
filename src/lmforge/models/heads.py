"""Heads: small modules that map a backbone's hidden states (B, T, d_model) to what a task scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLMHead(nn.Module):
    """BERT's masked-LM head: dense -> GELU -> LayerNorm -> vocabulary projection with a bias
    (its weight is usually tied to the token embedding by the owning model)."""

    def __init__(self, d_model: int, vocab_size: int, norm_eps: float):
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model, eps=norm_eps)
        self.decoder = nn.Linear(d_model, vocab_size)

    def forward(self, hidden: Tensor) -> Tensor:
        x = self.norm(F.gelu(self.dense(hidden)))  # (..., d_model)
        return self.decoder(x)                     # (..., vocab_size)


POOLINGS = ("cls", "mean", "last", "max")


def pool(hidden: Tensor, mask: Tensor, how: str) -> Tensor:
    """(B, T, d) -> (B, d): the first token ([CLS]), the mean or the max over real tokens, or the last
    real token (a causal model's summary of the whole text). `mask` (B, T) is True on real tokens."""
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        last = mask.long().sum(dim=1).clamp_min(1) - 1                          # (B,)
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)                               # (B, T, 1)
    if how == "mean":
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
    return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).amax(dim=1)


class SequenceHead(nn.Module):
    """Sequence classification: pooled hidden state -> dropout -> linear to the labels' logits."""

    def __init__(self, d_model: int, n_labels: int, pooling: str, dropout: float):
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, n_labels)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return self.out(self.dropout(pool(hidden, mask, self.pooling)))        # (B, n_labels)


class TokenHead(nn.Module):
    """Token classification: each position's hidden state -> dropout -> linear to the tags' logits."""

    def __init__(self, d_model: int, n_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, n_labels)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return self.out(self.dropout(hidden))                                   # (B, T, n_labels)
