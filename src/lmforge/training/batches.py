"""Typed batches and the samplers that draw them from memmapped token shards, indexed by step.

A sampler's batch for (step, micro-step) depends only on (seed, step) and the rank's slice of the
global batch, so the data position is just the step: resume is exact and 2 ranks see what 1 rank
with twice the batch would see. The stream sampler (truncated BPTT) also carries hidden states
from step to step; those are part of the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from lmforge.errors import InputError
from lmforge.evaluation.perplexity import windows
from lmforge.training import distributed


@dataclass
class StateCarry:
    """The recurrent state handed from one window of a stream to the next (detached by the objective)."""

    state: tuple[Tensor, ...] | None = None


@dataclass
class LMBatch:
    """Causal-LM windows: predict targets[:, t] = tokens[:, t + 1] of the stream."""

    tokens: Tensor                     # (B, T) int64
    targets: Tensor                    # (B, T) int64
    resets: Tensor | None = None       # (B, T) bool: a recurrent state is zeroed before these tokens
    carry: StateCarry | None = None    # recurrent state in and out (truncated BPTT)

    @property
    def n_tokens(self) -> int:
        """Tokens the model reads (every window is full: no padding)."""
        return self.tokens.numel()


@dataclass
class MLMBatch:
    """Masked-LM windows: tokens with some positions masked; targets hold the original ids there."""

    tokens: Tensor                     # (B, T) int64, after masking
    targets: Tensor                    # (B, T) int64, IGNORE where nothing is predicted

    @property
    def n_tokens(self) -> int:
        return self.tokens.numel()


def to_device(batch, device: torch.device):
    """The same batch with every tensor field on `device`."""
    moved = {f.name: getattr(batch, f.name).to(device, non_blocking=True) for f in fields(batch)
             if isinstance(getattr(batch, f.name), Tensor)}
    return replace(batch, **moved)


def _check_length(tokens: np.ndarray, needed: int, source: str) -> None:
    if len(tokens) < needed:
        raise InputError(f"{source}: only {len(tokens)} tokens, fewer than one window of {needed}; "
                         "use more text or a smaller --seq-len.")


def eval_windows(tokens: np.ndarray, seq_len: int, max_windows: int | None, stride: int | None = None) -> np.ndarray:
    """Windows from the start of the split: non-overlapping (what `lmforge eval` scores), or every
    `stride` tokens for sliding-window evaluation."""
    stride = stride or seq_len
    count = (len(tokens) - 1) // seq_len if stride == seq_len else max(0, (len(tokens) - 1 - seq_len) // stride + 1)
    if max_windows is not None:
        count = min(count, max_windows)
    return np.arange(count) * stride


def spread_windows(tokens: np.ndarray, seq_len: int, max_windows: int, runs: int = 8) -> np.ndarray:
    """The validation sample every eval during training reads: `max_windows` non-overlapping windows in
    `runs` contiguous runs spread evenly over the whole split (the first windows alone are one document or
    two, whose loss can sit far from the split's). Runs keep a recurrent model's state flowing between
    neighbouring windows; with room for all windows this is every window."""
    count = (len(tokens) - 1) // seq_len
    if count <= max_windows:
        return np.arange(count) * seq_len
    runs = max(1, min(runs, max_windows))
    lengths = np.full(runs, max_windows // runs) + (np.arange(runs) < max_windows % runs)
    firsts = np.linspace(0, count - lengths[-1], runs).astype(np.int64)   # the last run ends at the split's end
    return np.concatenate([np.arange(first, first + n) for first, n in zip(firsts, lengths)]) * seq_len


class WindowSampler:
    """The global batch of step s is `batch_size * grad_accum * world_size` windows drawn from a
    generator seeded with (seed, s); micro-step m of rank r takes its own contiguous slice."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, grad_accum: int,
                 rank: int, world_size: int, seed: int, source: str):
        _check_length(tokens, seq_len + 2, source)
        self.tokens, self.seq_len = tokens, seq_len
        self.batch_size, self.grad_accum = batch_size, grad_accum
        self.rank, self.world_size, self.seed = rank, world_size, seed

    def starts(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        global_batch = self.batch_size * self.grad_accum * self.world_size
        return rng.integers(0, len(self.tokens) - self.seq_len - 1, size=global_batch)

    def rows(self, micro: int) -> slice:
        """This rank's rows of the global batch in micro-step `micro`."""
        first = (micro * self.world_size + self.rank) * self.batch_size
        return slice(first, first + self.batch_size)

    def micro_batch(self, step: int, micro: int) -> LMBatch:
        return LMBatch(*windows(self.tokens, self.starts(step)[self.rows(micro)], self.seq_len))

    def checkpoint_tensors(self, info: distributed.DistInfo) -> dict[str, Tensor]:
        """State a checkpoint must keep besides model and optimizer (none: the step decides the data)."""
        return {}

    def restore(self, tensors: dict[str, Tensor], info: distributed.DistInfo, device) -> None:
        pass


class StreamSampler(WindowSampler):
    """Truncated BPTT: the train split is cut into one contiguous stream per row of the global batch;
    step s reads window s mod W of every stream, so each row continues where its previous window
    ended and its hidden state is carried over (detached). States restart with each pass over the
    data and, inside a window, at every document boundary (`resets`: before each EOS token)."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, grad_accum: int,
                 rank: int, world_size: int, seed: int, source: str, eos_id: int | None):
        super().__init__(tokens, seq_len, batch_size, grad_accum, rank, world_size, seed, source)
        streams = batch_size * grad_accum * world_size
        self.stream_len = len(tokens) // streams
        self.windows_per_pass = (self.stream_len - 1) // seq_len
        if self.windows_per_pass < 1:
            raise InputError(f"{source}: {len(tokens)} tokens cannot feed {streams} streams of at least "
                             f"{seq_len + 1} tokens; lower --batch-size or --seq-len, or use more text.")
        self.eos_id = eos_id
        self.carries = [StateCarry() for _ in range(grad_accum)]

    def micro_batch(self, step: int, micro: int) -> LMBatch:
        window = step % self.windows_per_pass
        carry = self.carries[micro]
        if window == 0:
            carry.state = None   # a new pass over the data starts from zero states
        rows = np.arange(self.batch_size * self.grad_accum * self.world_size)[self.rows(micro)]
        tokens, targets = windows(self.tokens, rows * self.stream_len + window * self.seq_len, self.seq_len)
        resets = tokens == self.eos_id if self.eos_id is not None else None
        return LMBatch(tokens, targets, resets, carry)

    def checkpoint_tensors(self, info: distributed.DistInfo) -> dict[str, Tensor]:
        """The states carried between windows, of all ranks, in global-batch row order (a collective:
        every rank takes part)."""
        if any(c.state is None for c in self.carries):
            return {}
        count = len(self.carries[0].state)
        stacked = {f"state_{k}": torch.stack([c.state[k] for c in self.carries]) for k in range(count)}
        # (grad_accum, n_layers, B, d) per rank -> rows of every rank, in the sampler's (micro, rank) order
        return {name: distributed.all_gather_cat(t, info, dim=2) for name, t in stacked.items()}

    def restore(self, tensors: dict[str, Tensor], info: distributed.DistInfo, device) -> None:
        rows = slice(info.rank * self.batch_size, (info.rank + 1) * self.batch_size)
        for micro, carry in enumerate(self.carries):
            if tensors:
                carry.state = tuple(tensors[f"state_{k}"][micro][:, rows].to(device) for k in range(len(tensors)))
