"""Heads: small modules that map a backbone's hidden states (B, T, d_model) to what a task scores."""

from __future__ import annotations

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
