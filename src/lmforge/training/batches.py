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
from lmforge.evaluation.masked import IGNORE
from lmforge.evaluation.perplexity import windows


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
    """Windows from the start of the split: non-overlapping (the fixed slice every eval uses), or every
    `stride` tokens for sliding-window evaluation."""
    stride = stride or seq_len
    count = (len(tokens) - 1) // seq_len if stride == seq_len else max(0, (len(tokens) - 1 - seq_len) // stride + 1)
    if max_windows is not None:
        count = min(count, max_windows)
    return np.arange(count) * stride


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

    def carried(self) -> list[StateCarry]:
        return []


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

    def carried(self) -> list[StateCarry]:
        return self.carries


class MaskedWindowSampler(WindowSampler):
    """Masked-LM windows: [CLS] + seq_len - 1 tokens of the stream; `mask_rate` of the ordinary tokens
    (or of whole words) are chosen, and of those 80% become [MASK], 10% a random token, 10% stay."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, grad_accum: int, rank: int,
                 world_size: int, seed: int, source: str, masking: MaskingRule):
        super().__init__(tokens, seq_len - 1, batch_size, grad_accum, rank, world_size, seed, source)
        self.masking = masking

    def micro_batch(self, step: int, micro: int) -> MLMBatch:
        starts = self.starts(step)
        rng = np.random.default_rng([self.seed, step, 1])  # masks of the whole global batch: rank-independent
        offsets = starts[:, None] + np.arange(self.seq_len)[None, :]
        tokens, targets = self.masking.apply(self.tokens[offsets].astype(np.int64), rng)
        rows = self.rows(micro)
        return MLMBatch(torch.from_numpy(tokens[rows]), torch.from_numpy(targets[rows]))


@dataclass
class MaskingRule:
    """BERT's masking of a (B, T) window batch; `special` ids are never chosen, `continues_word`
    (vocab-sized bool) marks sub-word pieces that continue a word (for whole-word masking)."""

    cls_id: int
    mask_id: int
    special: np.ndarray
    vocab_size: int
    mask_rate: float = 0.15
    continues_word: np.ndarray | None = None

    def apply(self, windows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of shape (B, T + 1): [CLS] first, then the masked windows."""
        candidates = ~np.isin(windows, self.special)
        draw = rng.random(windows.shape)
        if self.continues_word is None:
            chosen = candidates & (draw < self.mask_rate)
        else:  # a word is chosen by the draw at its first piece; its continuation pieces follow it
            chosen = self._whole_words(candidates & ~self.continues_word[windows], candidates, draw)
        action = rng.random(windows.shape)
        inputs = windows.copy()
        inputs[chosen & (action < 0.8)] = self.mask_id
        randomised = chosen & (action >= 0.8) & (action < 0.9)
        inputs[randomised] = rng.integers(0, self.vocab_size, size=int(randomised.sum()))
        targets = np.where(chosen, windows, IGNORE)
        cls = np.full((len(windows), 1), self.cls_id, dtype=np.int64)
        return np.concatenate([cls, inputs], axis=1), np.concatenate([np.full_like(cls, IGNORE), targets], axis=1)

    def _whole_words(self, starts: np.ndarray, candidates: np.ndarray, draw: np.ndarray) -> np.ndarray:
        """A piece is chosen when the draw at the start of its word is under the rate."""
        B, T = starts.shape
        word_start = np.where(starts, np.arange(T)[None, :], -1)
        word_start = np.maximum.accumulate(word_start, axis=1)      # position of each piece's word start
        valid = candidates & (word_start >= 0)
        start_draw = np.take_along_axis(draw, np.maximum(word_start, 0), axis=1)
        return valid & (start_draw < self.mask_rate)
