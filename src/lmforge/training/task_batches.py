"""Batches of labelled examples for fine-tuning, indexed by step like the LM samplers (so resume is
exact and ranks take disjoint rows): `ClassBatch` for sequence classification, `TagBatch` for token
classification. Each epoch is a fresh permutation seeded by (seed, epoch); a batch is padded to its
longest row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmforge.tasks.encode import IGNORE


@dataclass
class ClassBatch:
    tokens: torch.Tensor            # (B, T) int64
    mask: torch.Tensor              # (B, T) bool, True on real tokens
    labels: torch.Tensor            # (B,) int64, or (B, L) float multi-hot
    segments: torch.Tensor | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())


@dataclass
class TagBatch:
    tokens: torch.Tensor            # (B, T)
    mask: torch.Tensor              # (B, T)
    labels: torch.Tensor            # (B, T) tag ids, IGNORE off the first piece of a word
    segments: torch.Tensor | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())


def pad_rows(rows: list[np.ndarray], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max(len(r) for r in rows))
    out = np.full((len(rows), width), pad, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
        mask[i, :len(row)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def make_batch(ids: list[np.ndarray], segments, labels, pad_id: int, tagging: bool):
    tokens, mask = pad_rows(ids, pad_id)
    segs = pad_rows(segments, 0)[0] if segments is not None else None
    if tagging:
        return TagBatch(tokens, mask, pad_rows(labels, IGNORE)[0], segs)
    return ClassBatch(tokens, mask, torch.from_numpy(np.asarray(labels)), segs)


class TaskSampler:
    """Rows for (step, micro-step, rank) out of an endless sequence of shuffled epochs."""

    def __init__(self, ids, segments, labels, batch_size: int, grad_accum: int, rank: int, world_size: int,
                 seed: int, pad_id: int, tagging: bool):
        self.ids, self.segments, self.labels = ids, segments, labels
        self.batch_size, self.grad_accum, self.rank, self.world_size = batch_size, grad_accum, rank, world_size
        self.seed, self.pad_id, self.tagging = seed, pad_id, tagging
        self._orders: dict[int, np.ndarray] = {}

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.ids))}
        return self._orders[epoch]

    def rows(self, step: int, micro: int) -> np.ndarray:
        per_step = self.batch_size * self.grad_accum * self.world_size
        first = step * per_step + (micro * self.world_size + self.rank) * self.batch_size
        positions = first + np.arange(self.batch_size)
        n = len(self.ids)
        return np.array([self._order(p // n)[p % n] for p in positions])

    def micro_batch(self, step: int, micro: int):
        rows = self.rows(step, micro)
        segments = [self.segments[r] for r in rows] if self.segments is not None else None
        labels = [self.labels[r] for r in rows]
        return make_batch([self.ids[r] for r in rows], segments, labels, self.pad_id, self.tagging)

    def carried(self) -> list:
        return []   # nothing is carried between steps (the LM stream samplers carry states)


def batches_in_order(ids, segments, labels, batch_size: int, pad_id: int, tagging: bool):
    """Every example once, in order (evaluation and prediction)."""
    for start in range(0, len(ids), batch_size):
        rows = range(start, min(start + batch_size, len(ids)))
        yield make_batch([ids[r] for r in rows], [segments[r] for r in rows] if segments is not None else None,
                         [labels[r] for r in rows] if labels is not None else
                         ([np.zeros(len(ids[r]), dtype=np.int64) for r in rows] if tagging else np.zeros(len(rows))),
                         pad_id, tagging)
