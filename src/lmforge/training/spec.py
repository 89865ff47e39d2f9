"""What the one training loop is given: a `TrainSpec` says what a kind of training is (its objective,
its batches, its validation and the extra state a checkpoint keeps); the loop knows nothing else of
it. Language-model recipes (training/recipes.py) and fine-tuning tasks (training/task_spec.py) each
build one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from lmforge.training.distributed import DistInfo


@dataclass
class LoopContext:
    """What the loop has decided once it started, which samplers and validations need."""

    device: torch.device
    autocast_dtype: torch.dtype | None
    info: DistInfo
    batch_size: int
    grad_accum: int
    seed: int
    eval_windows: int
    run_dir: Path


class Batch(Protocol):
    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens the model reads: what tokens/s and MFU count."""


class Sampler(Protocol):
    def micro_batch(self, step: int, micro: int) -> Batch:
        """This rank's batch of micro-step `micro` of optimizer step `step` (a function of the step alone,
        so a resumed run reads what the uninterrupted one would)."""

    def checkpoint_tensors(self, info: DistInfo) -> dict[str, Tensor]:
        """State to keep in a checkpoint besides model and optimizer (the recurrent carry), gathered from
        every rank."""

    def restore(self, tensors: dict[str, Tensor], info: DistInfo, device) -> None:
        """Take back what `checkpoint_tensors` gave."""


class Validation(Protocol):
    def evaluate(self, model: nn.Module) -> dict | None:
        """{"val_loss": ...} (and "val_score", "score_name" when a higher score is better), or None when
        there is nothing to validate on."""


@dataclass
class TrainSpec:
    name: str
    """What is trained, for messages and the summary (e.g. "gpt causal_lm", "classify")."""
    objective: Callable[[nn.Module, Any], Tensor]
    """`objective(net, batch) -> loss` (training/objectives.py)."""
    sampler: Callable[[LoopContext], Sampler]
    validation: Callable[[LoopContext], Validation]
    seq_len: int
    """Tokens per row (the FLOPs of attention grow with it)."""
    patience: int | None = None
    """Stop after this many evaluations without a better val_score (None: never)."""
    layer_decay: float | None = None
    """Layer-wise LR decay of the optimizer (fine-tuning Transformer backbones)."""
