"""Encoded task examples as padded batches, and a task model run over them in order: the logits that
validation scores and prediction decodes (training and inference both use this; neither owns it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmforge.devices import autocast
from lmforge.evaluation.masked import IGNORE


@dataclass
class TaskBatch:
    """Labelled rows padded to the longest: labels (B,) class ids, (B, L) multi-hot floats, (B, T) tag ids
    (IGNORE off the first piece of a word) or (B, 2) answer span positions."""

    tokens: torch.Tensor            # (B, T) int64
    mask: torch.Tensor              # (B, T) bool, True on real tokens
    labels: torch.Tensor
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


def make_batch(ids: list[np.ndarray], segments, labels, pad_id: int, per_token_labels: bool) -> TaskBatch:
    tokens, mask = pad_rows(ids, pad_id)
    segs = pad_rows(segments, 0)[0] if segments is not None else None
    targets = pad_rows(labels, IGNORE)[0] if per_token_labels else torch.from_numpy(np.asarray(labels))
    return TaskBatch(tokens, mask, targets, segs)


def batches_by_length(ids, segments, batch_size: int, pad_id: int):
    """Every example once, without labels (evaluation and prediction), in batches of similar lengths (little
    padding: a tagger's head reads every padded position); yields (the examples' numbers, their batch)."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        yield rows, make_batch([ids[r] for r in rows], [segments[r] for r in rows] if segments is not None else None,
                               np.zeros(len(rows)), pad_id, False)


@torch.no_grad()
def task_logits(model, ids, segments, batch_size: int, device, per_token: bool, pad_id: int,
                autocast_dtype=None) -> list[np.ndarray]:
    """Per example, in the order of `ids`: (n_labels,) logits, or (T, n_labels) per position (eval mode
    restored after). Each row is masked, so its logits do not depend on the batch it is in."""
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(ids)
    try:
        for rows, batch in batches_by_length(ids, segments, batch_size, pad_id):
            with autocast(device, autocast_dtype):
                logits = model(batch.tokens.to(device), batch.mask.to(device),
                               batch.segments.to(device) if batch.segments is not None else None)
            logits = logits.float().cpu().numpy()
            lengths = batch.mask.sum(dim=1).tolist()
            for i, row in enumerate(rows):
                out[row] = logits[i, :lengths[i]] if per_token else logits[i]
    finally:
        model.train(was_training)
    return out
