"""Validation loss, perplexity and bits-per-byte over fixed windows of a token shard.

Bits per byte divide the summed negative log-likelihood (in bits) by the UTF-8 bytes of the text
the targets stand for, so models with different tokenizers can be compared fairly. Bytes come from
an exact per-token byte table when the tokenizer has one, else from the shard's bytes/tokens ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class NLLSums:
    """Additive totals, so ranks or batches can be summed before the ratios are taken."""

    nll: float = 0.0
    tokens: int = 0
    bytes: float = 0.0

    def __add__(self, other: NLLSums) -> NLLSums:
        return NLLSums(self.nll + other.nll, self.tokens + other.tokens, self.bytes + other.bytes)

    def report(self) -> dict:
        loss = self.nll / max(self.tokens, 1)
        return {
            "val_loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "bits_per_byte": self.nll / math.log(2) / self.bytes if self.bytes else None,
            "tokens": self.tokens,
            "bytes": round(self.bytes),
        }


@torch.no_grad()
def nll_sums(model: nn.Module, tokens: np.ndarray, starts: np.ndarray, seq_len: int, batch_size: int,
             device: torch.device, token_bytes: np.ndarray | None, bytes_per_token: float,
             autocast_dtype: torch.dtype | None = None) -> NLLSums:
    """Summed NLL over windows tokens[s : s + seq_len + 1] for s in `starts`."""
    was_training = model.training
    model.eval()
    totals = NLLSums()
    for first in range(0, len(starts), batch_size):
        offsets = starts[first:first + batch_size, None] + np.arange(seq_len + 1)[None, :]
        chunk = torch.from_numpy(tokens[offsets].astype(np.int64))               # (B, T + 1)
        inputs, targets = chunk[:, :-1].to(device), chunk[:, 1:]
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(inputs)                                                # (B, T, V)
        nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten().to(device), reduction="sum")
        byte_count = (float(token_bytes[targets.numpy()].sum()) if token_bytes is not None
                      else targets.numel() * bytes_per_token)
        totals = totals + NLLSums(nll.item(), targets.numel(), byte_count)
    model.train(was_training)
    return totals


def unigram_bits_per_byte(train: np.ndarray, val: np.ndarray, vocab_size: int, val_bytes: float) -> dict:
    """The baseline a model must beat: add-one-smoothed unigram token frequencies of the train split."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    nll = -float(log_probs[val].sum())
    return {"val_loss": nll / len(val), "bits_per_byte": nll / math.log(2) / val_bytes}
