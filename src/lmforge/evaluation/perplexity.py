"""Validation loss, perplexity and bits-per-byte over fixed windows of a token shard.

Bits per byte divide the summed negative log-likelihood (in bits) by the UTF-8 bytes of the text
the targets stand for, so models with different tokenizers can be compared fairly. Bytes come from
an exact per-token byte table when the tokenizer has one, else from the shard's bytes/tokens ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class NLLSums:
    """Additive totals, so ranks or batches can be summed before the ratios are taken."""

    nll: float = 0.0
    tokens: int = 0
    bytes: float = 0.0

    def __add__(self, other: NLLSums) -> NLLSums:
        return NLLSums(self.nll + other.nll, self.tokens + other.tokens, self.bytes + other.bytes)

    def values(self) -> list[float]:
        return [self.nll, float(self.tokens), self.bytes]

    @classmethod
    def of(cls, values) -> NLLSums:
        return cls(float(values[0]), int(values[1]), float(values[2]))

    def report(self) -> dict:
        loss = self.nll / max(self.tokens, 1)
        return {
            "val_loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "bits_per_byte": self.nll / math.log(2) / self.bytes if self.bytes else None,
            "tokens": self.tokens,
            "bytes": round(self.bytes),
        }


def _sums(logits: Tensor, targets: Tensor, token_bytes: np.ndarray | None, bytes_per_token: float,
          scored: Tensor | None = None) -> NLLSums:
    """NLL of logits (B, T, V) against targets (B, T) (on the CPU), with the bytes the targets stand for;
    only where `scored` (B, T) is true, when given."""
    nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten().to(logits.device), reduction="none")
    if scored is not None:
        nll, targets = nll[scored.flatten().to(nll.device)], targets[scored]
    byte_count = (float(token_bytes[targets.numpy()].sum()) if token_bytes is not None
                  else targets.numel() * bytes_per_token)
    return NLLSums(nll.sum().item(), targets.numel(), byte_count)


def windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[Tensor, Tensor]:
    """(inputs, targets), each (B, T) int64, of the windows tokens[s : s + seq_len + 1] for s in starts."""
    offsets = starts[:, None] + np.arange(seq_len + 1)[None, :]
    chunk = torch.from_numpy(tokens[offsets].astype(np.int64))                   # (B, T + 1)
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def nll_sums(model: nn.Module, tokens: np.ndarray, starts: np.ndarray, seq_len: int, batch_size: int,
             device: torch.device, token_bytes: np.ndarray | None, bytes_per_token: float,
             autocast_dtype: torch.dtype | None = None, progress: Callable[[int], None] | None = None,
             scored_from: int = 0) -> NLLSums:
    """Summed NLL over windows tokens[s : s + seq_len + 1] for s in `starts`; with overlapping
    (sliding) windows, a window after the first scores only its targets from `scored_from` on, so
    every target is scored once with at least that much context. `progress(n)`: n more windows done."""
    was_training = model.training
    model.eval()
    totals = NLLSums()
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first:first + batch_size]
        inputs, targets = windows(tokens, batch_starts, seq_len)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(inputs.to(device))                                     # (B, T, V)
        scored = None
        if scored_from:
            scored = torch.arange(seq_len)[None, :] >= scored_from                # (1, T)
            scored = scored | torch.from_numpy(batch_starts == 0)[:, None]        # (B, T): the first window whole
        totals = totals + _sums(logits, targets, token_bytes, bytes_per_token, scored)
        if progress:
            progress(len(inputs))
    model.train(was_training)
    return totals


@torch.no_grad()
def stream_nll_sums(model: nn.Module, tokens: np.ndarray, starts: np.ndarray, seq_len: int, batch_size: int,
                    device: torch.device, token_bytes: np.ndarray | None, bytes_per_token: float,
                    autocast_dtype: torch.dtype | None = None, eos_id: int | None = None,
                    progress: Callable[[int], None] | None = None) -> NLLSums:
    """The same windows as `nll_sums`, read as streams by a recurrent model: the windows are cut into
    `batch_size` contiguous runs, one per row, and each row's state flows from one window to the next
    (reset before each EOS), as a recurrent LM is evaluated on running text."""
    was_training = model.training
    model.eval()
    runs = np.array_split(starts, min(batch_size, len(starts)))           # longer runs first
    state = model.new_state(len(runs), device=device).layers
    totals = NLLSums()
    for k in range(len(runs[0])):
        active = sum(len(run) > k for run in runs)                          # a prefix of the rows
        state = tuple(s[:, :active] for s in state)
        inputs, targets = windows(tokens, np.array([run[k] for run in runs[:active]]), seq_len)
        resets = (inputs == eos_id).to(device) if eos_id is not None else None
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            hidden, state = model.hidden(inputs.to(device), state, resets)  # (B, T, d_model)
            logits = model.lm_head(hidden)                                  # (B, T, V)
        totals = totals + _sums(logits, targets, token_bytes, bytes_per_token)
        if progress:
            progress(active)
    model.train(was_training)
    return totals


def unigram_bits_per_byte(train: np.ndarray, val: np.ndarray, vocab_size: int, val_bytes: float) -> dict:
    """The baseline a model must beat: add-one-smoothed unigram token frequencies of the train split."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    nll = -float(log_probs[val].sum())
    return {"val_loss": nll / len(val), "bits_per_byte": nll / math.log(2) / val_bytes}
