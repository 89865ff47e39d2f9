"""Batches of labelled examples for fine-tuning, indexed by step like the LM samplers (so resume is
exact and ranks take disjoint rows). Each epoch is a fresh permutation seeded by (seed, epoch); a batch
is padded to its longest row."""

from __future__ import annotations

import numpy as np

from lmforge.tasks.batches import TaskBatch, make_batch


class TaskSampler:
    """Rows for (step, micro-step, rank) out of an endless sequence of shuffled epochs."""

    def __init__(self, ids, segments, labels, batch_size: int, grad_accum: int, rank: int, world_size: int,
                 seed: int, pad_id: int, per_token_labels: bool):
        self.ids, self.segments, self.labels = ids, segments, labels
        self.batch_size, self.grad_accum, self.rank, self.world_size = batch_size, grad_accum, rank, world_size
        self.seed, self.pad_id, self.per_token_labels = seed, pad_id, per_token_labels
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

    def micro_batch(self, step: int, micro: int) -> TaskBatch:
        rows = self.rows(step, micro)
        segments = [self.segments[r] for r in rows] if self.segments is not None else None
        labels = [self.labels[r] for r in rows]
        return make_batch([self.ids[r] for r in rows], segments, labels, self.pad_id, self.per_token_labels)

    def checkpoint_tensors(self, info) -> dict:
        return {}   # nothing is carried between steps (the LM stream samplers carry states)

    def restore(self, tensors, info, device) -> None:
        pass
