"""Layers the Transformer families share (the GPT decoder, the BERT encoder and the encoder-decoder):
RMSNorm, rotary position embeddings, the SwiGLU MLP, the key/value cache whose rows each keep their own
length and the mask of the cached slots a new query sees; and what every encoder-decoder model hands its
decoder (`EncoderOutput`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for rotary position embeddings (rotate-half layout, as in Llama/HF)."""

    def __init__(self, head_dim: int, max_seq_len: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)  # (T, hd/2)
        angles = torch.cat([angles, angles], dim=-1)                                    # (T, hd)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, start: int, T: int) -> tuple[Tensor, Tensor]:
        """cos and sin of positions start .. start+T-1, shaped (T, 1, hd) to broadcast over heads."""
        return self.cos[start:start + T, None], self.sin[start:start + T, None]

    def at(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """cos and sin of each row's own positions (B, T), shaped (B, T, 1, hd); padding (< 0) reads 0."""
        index = positions.clamp_min(0)
        return self.cos[index][:, :, None], self.sin[index][:, :, None]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate (B, T, heads, hd) queries/keys by their positions' angles."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)   # (B, T, d_ff) each
        return self.down(F.silu(gate) * up)           # (B, T, d_model)


@dataclass
class CacheStep:
    """Where one forward pass puts each row's new keys: a row's real tokens are the last `counts[b]` of
    the chunk (padding comes first), stored from slot `starts[b]` on. `mask` (B, 1, T, S) says which
    slots each query sees; None when every row is at the same slot and the chunk holds no padding."""

    starts: list[int]
    counts: list[int]
    width: int            # T, the chunk's columns
    span: int             # S, the slots attended to (the longest row after this step)
    mask: Tensor | None

    @property
    def uniform(self) -> bool:
        return self.mask is None


class KVCache:
    """Keys and values of past tokens, preallocated for `max_len` tokens per row, one slot per layer.
    Each row keeps its own length: a batch holds prompts of different lengths, and speculative decoding
    or a refilled context cuts rows back by different amounts. Only real tokens are stored, so a row's
    slot index is its position."""

    def __init__(self, n_layers: int, batch_size: int, n_kv_heads: int, max_len: int, head_dim: int,
                 device=None, dtype=None):
        shape = (n_layers, batch_size, n_kv_heads, max_len, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.lengths = [0] * batch_size   # tokens stored per row
        self.max_len = max_len
        self._spare: tuple[Tensor, Tensor] | None = None   # what `reorder` gathers into

    @property
    def pos(self) -> int:
        """The length of every row (they must agree)."""
        if len(set(self.lengths)) > 1:
            raise ValueError(f"rows hold different lengths {self.lengths}")
        return self.lengths[0] if self.lengths else 0

    def plan(self, positions: Tensor) -> CacheStep:
        """The step that stores a chunk whose padding columns have positions < 0."""
        B, T = positions.shape
        padded = bool(positions.min() < 0)
        counts = (positions >= 0).sum(dim=1).tolist() if padded else [T] * B
        starts = list(self.lengths)
        span = max(s + n for s, n in zip(starts, counts))
        if span > self.max_len:
            raise ValueError(f"sequence of {span} tokens exceeds max_seq_len {self.max_len}")
        if not padded and len(set(starts)) == 1:
            return CacheStep(starts, counts, T, span, None)
        return CacheStep(starts, counts, T, span, _ragged_mask(starts, counts, T, span, positions.device))

    def store(self, layer: int, k: Tensor, v: Tensor, step: CacheStep) -> tuple[Tensor, Tensor]:
        """Put (B, H_kv, T, hd) new keys/values in each row's next slots; return slots 0..span-1."""
        if step.uniform:
            start = step.starts[0]
            self.keys[layer, :, :, start:start + step.width] = k
            self.values[layer, :, :, start:start + step.width] = v
        elif step.width == 1 and all(step.counts):   # one token per row: one indexed write
            rows = torch.arange(len(step.starts), device=k.device)
            slots = torch.tensor(step.starts, device=k.device)
            self.keys[layer, rows, :, slots] = k[:, :, 0]
            self.values[layer, rows, :, slots] = v[:, :, 0]
        else:
            for row, (start, count) in enumerate(zip(step.starts, step.counts)):
                if count:
                    self.keys[layer, row, :, start:start + count] = k[row, :, step.width - count:]
                    self.values[layer, row, :, start:start + count] = v[row, :, step.width - count:]
        return self.keys[layer, :, :, :step.span], self.values[layer, :, :, :step.span]

    def advance(self, step: CacheStep) -> None:
        self.lengths = [s + n for s, n in zip(step.starts, step.counts)]

    def reorder(self, index: Tensor) -> KVCache:
        """Rows in the order of `index` (beam search; dropping finished rows). Only the slots in use are
        moved, a layer at a time, gathered straight into a second pair of buffers that then swaps with the
        first (a gather along the leading dimension into its target runs several times faster than an
        indexed copy over the whole 5-d buffer, and a beam step reorders at every token)."""
        span, rows = max(self.lengths, default=0), len(index)
        if self._spare is None or self._spare[0].size(1) < rows:   # zeroed: never-written slots stay finite
            self._spare = (self.keys.new_zeros((self.keys.size(0), rows, *self.keys.shape[2:])),
                           self.values.new_zeros((self.values.size(0), rows, *self.values.shape[2:])))
        keys, values = (spare[:, :rows] for spare in self._spare)
        for layer in range(self.keys.size(0)):
            for old, new in ((self.keys, keys), (self.values, values)):
                if old.requires_grad:   # a cache decoded outside inference mode: out= is not differentiable
                    new[layer, :, :, :span] = old[layer, :, :, :span].index_select(0, index)
                else:
                    torch.index_select(old[layer, :, :, :span], 0, index, out=new[layer, :, :, :span])
        self._spare = (self.keys, self.values)
        self.keys, self.values = keys, values
        self.lengths = [self.lengths[i] for i in index.tolist()]
        return self

    def concat(self, other: KVCache) -> KVCache:
        """This cache's rows followed by `other`'s (a batch that new sequences join between steps); room for
        the longer of the two. Only the slots in use are copied."""
        max_len = max(self.max_len, other.max_len)
        span = max(self.lengths + other.lengths, default=0)
        shape = (self.keys.size(0), self.keys.size(1) + other.keys.size(1), *self.keys.shape[2:3], max_len,
                 self.keys.size(-1))
        keys, values = self.keys.new_zeros(shape), self.values.new_zeros(shape)
        rows = self.keys.size(1)
        for start, cache in ((0, self), (rows, other)):
            end = start + cache.keys.size(1)
            keys[:, start:end, :, :span] = cache.keys[:, :, :, :span]
            values[:, start:end, :, :span] = cache.values[:, :, :, :span]
        self.keys, self.values, self.max_len, self._spare = keys, values, max_len, None
        self.lengths = self.lengths + other.lengths
        return self

    def truncate(self, lengths: list[int]) -> KVCache:
        """Forget each row's slots from lengths[b] on (rejected drafts, a context to re-read)."""
        if any(new > old or new < 0 for new, old in zip(lengths, self.lengths)):
            raise ValueError(f"cannot truncate rows of lengths {self.lengths} to {lengths}")
        self.lengths = list(lengths)
        return self


def _ragged_mask(starts: list[int], counts: list[int], T: int, span: int, device) -> Tensor:
    """(B, 1, T, S): real query i of row b (the chunk's last counts[b] columns) sees slots up to its own;
    a padding query sees slot 0 only, which keeps its (unused) output finite."""
    start = torch.tensor(starts, device=device)[:, None]                 # (B, 1)
    offset = T - torch.tensor(counts, device=device)[:, None]            # (B, 1): first real column
    columns = torch.arange(T, device=device)[None, :]                    # (1, T)
    slot = start + columns - offset                                      # (B, T)
    keys = torch.arange(span, device=device)[None, None, :]              # (1, 1, S)
    sees = keys <= slot[:, :, None]                                      # (B, T, S)
    sees = torch.where((columns >= offset)[:, :, None], sees, keys == 0)
    return sees[:, None]                                                 # (B, 1, T, S)


def cached_mask(step: CacheStep, device) -> tuple[Tensor | None, bool]:
    """(mask, is_causal) of the cached slots each new query sees: all of them for a single new token;
    the causal part of a first chunk; the prefix plus the causal part of a later chunk; each row its own
    (step.mask) when rows differ."""
    if not step.uniform:
        return step.mask, False
    start, T = step.starts[0], step.width
    if T == 1 or start == 0:
        return None, T > 1
    return torch.ones(T, start + T, dtype=torch.bool, device=device).tril(diagonal=start), False


def regroup(group: int, sources: int, index: Tensor) -> tuple[Tensor | None, int]:
    """Rows of an encoder-decoder batch read `sources` encoded sources, `group` consecutive rows each (a
    sentence's beams; 1: a row per source), so encoder states and cross-attention keys are held once per
    source and a source's rows query them together. After keeping the rows `index`: the sources to keep
    (None: all of them, in place, as after a beam step, where beams move within their sentence) and the new
    group size. A selection that leaves rows out of source order, or in unequal groups, gives each row its
    own copy (group 1)."""
    read = torch.arange(sources, device=index.device).repeat_interleave(group)[index]   # each kept row's source
    if not len(read):
        return read, 1
    kept, renumbered = torch.unique(read, return_inverse=True)
    size = len(read) // len(kept)
    grouped = torch.arange(len(kept), device=index.device).repeat_interleave(size)
    if size * len(kept) == len(read) and torch.equal(renumbered, grouped):
        return (None if len(kept) == sources else kept), size
    return read, 1


@dataclass
class EncoderOutput:
    """What an encoder-decoder model's encoder gives its decoder: the states of every source token and
    which of them are real (padding is never attended to)."""

    states: Tensor        # (B, S, d)
    mask: Tensor          # (B, S) bool, True for real tokens
    start: tuple[Tensor, ...] | None = None
    """The decoder's first state, (layers, B, d) each, for a decoder that starts from the encoder's (an RNN)."""

    def select(self, index: Tensor) -> EncoderOutput:
        start = None if self.start is None else tuple(s[:, index] for s in self.start)
        return EncoderOutput(self.states[index], self.mask[index], start)
