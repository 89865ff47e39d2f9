"""Masked-LM evaluation: loss and accuracy at masked positions, and pseudo-perplexity (each token
masked in turn and scored from both sides, Salazar et al. 2020)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE = -100  # target id that no loss counts (the one definition)


@dataclass
class MaskedSums:
    """Additive totals over masked positions (summable across batches and ranks)."""

    nll: float = 0.0
    predicted: int = 0
    correct: int = 0

    def __add__(self, other: MaskedSums) -> MaskedSums:
        return MaskedSums(self.nll + other.nll, self.predicted + other.predicted, self.correct + other.correct)

    def values(self) -> list[float]:
        return [self.nll, float(self.predicted), float(self.correct)]

    @classmethod
    def of(cls, values) -> MaskedSums:
        return cls(float(values[0]), int(values[1]), int(values[2]))

    def report(self) -> dict:
        loss = self.nll / max(self.predicted, 1)
        return {"val_loss": loss, "mlm_loss": loss, "masked_accuracy": self.correct / max(self.predicted, 1),
                "masked_tokens": self.predicted}


@torch.no_grad()
def masked_sums(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device,
                autocast_dtype: torch.dtype | None = None, progress: Callable[[int], None] | None = None) -> MaskedSums:
    """Summed loss and hits of the masked-LM head over (inputs, targets) batches (targets IGNORE elsewhere)."""
    was_training = model.training
    model.eval()
    totals = MaskedSums()
    for inputs, targets in batches:
        picked = targets != IGNORE                                                   # (B, T)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model.mlm_head(model.hidden(inputs.to(device))[picked.to(device)]).float()  # (n, V)
        wanted = targets[picked].to(device)
        totals = totals + MaskedSums(F.cross_entropy(logits, wanted, reduction="sum").item(), int(picked.sum()),
                                     int((logits.argmax(-1) == wanted).sum()))
        if progress:
            progress(len(inputs))
    model.train(was_training)
    return totals


@torch.no_grad()
def pseudo_perplexity(model: nn.Module, windows: Tensor, scored: Tensor, mask_id: int, device: torch.device,
                      batch_size: int = 64) -> dict:
    """exp(mean over scored tokens of -log p(token | the window with that token masked)); windows (N, T),
    scored (N, T) bool marks the ordinary tokens to score. One forward pass per scored token."""
    was_training = model.training
    model.eval()
    rows, cols = scored.nonzero(as_tuple=True)
    nll = 0.0
    for first in range(0, len(rows), batch_size):
        r, c = rows[first:first + batch_size], cols[first:first + batch_size]
        inputs = windows[r].clone()                                                  # (b, T)
        inputs[torch.arange(len(r)), c] = mask_id
        hidden = model.hidden(inputs.to(device))[torch.arange(len(r)), c.to(device)]  # (b, d_model)
        logits = model.mlm_head(hidden).float()                                      # (b, V)
        nll += F.cross_entropy(logits, windows[r, c].to(device), reduction="sum").item()
    model.train(was_training)
    mean = nll / max(len(rows), 1)
    return {"pseudo_perplexity": math.exp(min(mean, 50.0)), "pseudo_nll": mean, "pseudo_scored_tokens": len(rows)}
