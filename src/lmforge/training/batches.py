"""Random windows of a memmapped token shard, chosen by (seed, step) so any step can be replayed."""

from __future__ import annotations

import numpy as np
import torch

from lmforge.errors import InputError


class WindowSampler:
    """The global batch of step s is `batch_size * grad_accum * world_size` windows drawn from a
    generator seeded with (seed, s); micro-step m of rank r takes its own contiguous slice.
    So the data position is just the step, and 2 ranks see exactly what 1 rank with twice the
    batch would see."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, grad_accum: int,
                 rank: int, world_size: int, seed: int, source: str):
        if len(tokens) < seq_len + 2:
            raise InputError(f"{source}: only {len(tokens)} tokens, fewer than one window of "
                             f"{seq_len + 1}; use more text or a smaller --train.seq-len.")
        self.tokens, self.seq_len = tokens, seq_len
        self.batch_size, self.grad_accum = batch_size, grad_accum
        self.rank, self.world_size, self.seed = rank, world_size, seed

    def starts(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        global_batch = self.batch_size * self.grad_accum * self.world_size
        return rng.integers(0, len(self.tokens) - self.seq_len - 1, size=global_batch)

    def micro_batch(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens, targets), each (B, T) int64."""
        first = (micro * self.world_size + self.rank) * self.batch_size
        starts = self.starts(step)[first:first + self.batch_size]
        return windows(self.tokens, starts, self.seq_len)


def windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = starts[:, None] + np.arange(seq_len + 1)[None, :]
    chunk = torch.from_numpy(tokens[offsets].astype(np.int64))   # (B, T + 1)
    return chunk[:, :-1], chunk[:, 1:]


def eval_windows(tokens: np.ndarray, seq_len: int, max_windows: int | None) -> np.ndarray:
    """Non-overlapping windows from the start of the split: the fixed slice every eval uses."""
    count = (len(tokens) - 1) // seq_len
    if max_windows is not None:
        count = min(count, max_windows)
    return np.arange(count) * seq_len
