"""Losses computed from model outputs; models only return tensors."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

IGNORE = -100


def causal_lm(model: nn.Module, tokens: Tensor, targets: Tensor) -> Tensor:
    logits = model(tokens)                                                   # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


OBJECTIVES = {"causal_lm": causal_lm}
