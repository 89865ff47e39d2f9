"""A backbone of any family with a task head: what fine-tuning trains and `predict` runs.

`hidden(tokens, mask, segments)` gives the backbone's states (B, T, d): an encoder reads the padding
mask and segments (the task bodies read the mask, a BiLSTM the segments too); a decoder or
recurrent model reads left to right, so right padding never reaches
the real tokens. The head (models/heads.py) is applied by the objective, as the LM heads are."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lmforge.models.bag_of_ngrams import BagOfNgrams
from lmforge.models.bert import BERT
from lmforge.models.birnn import BiRNNEncoder
from lmforge.models.heads import POOLINGS, SequenceHead, TokenHead
from lmforge.models.rnn import RNNLM

TASKS = ("classify", "tag", "span")


@dataclass
class TaskHeadConfig:
    task: str = "classify"
    """classify (one label per text or pair; multi-label when labels are lists), tag (one per token) or
    span (start and end logits per token: extractive QA)."""
    n_labels: int = 2
    pooling: str = "cls"
    """classify: cls, mean, last or max pooling of the hidden states."""
    dropout: float = 0.1
    multi_label: bool = False

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.n_labels < 1 or not 0 <= self.dropout < 1:
            raise ValueError("a head needs at least one label and dropout in [0, 1)")


def hidden_size(backbone: nn.Module) -> int:
    return backbone.config.d_model


class TaskModel(nn.Module):
    def __init__(self, backbone: nn.Module, head: TaskHeadConfig):
        super().__init__()
        self.backbone = backbone
        self.head_config = head
        d = hidden_size(backbone)
        self.head = SequenceHead(d, head.n_labels, head.pooling, head.dropout) if head.task == "classify" \
            else TokenHead(d, head.n_labels, head.dropout)
        # per-class loss weights for unbalanced labels (set by the trainer; not part of the weights file)
        self.register_buffer("class_weights", torch.ones(head.n_labels), persistent=False)

    @property
    def config(self):
        return self.backbone.config

    def hidden(self, tokens: Tensor, mask: Tensor, segments: Tensor | None = None) -> Tensor:
        if isinstance(self.backbone, BERT):
            return self.backbone.hidden(tokens, mask, segments)
        if isinstance(self.backbone, BiRNNEncoder):
            return self.backbone.hidden(tokens, mask, segments)
        if isinstance(self.backbone, BagOfNgrams):
            return self.backbone.hidden(tokens, mask)
        if isinstance(self.backbone, RNNLM):
            return self.backbone.hidden(tokens)[0]
        return self.backbone.hidden(tokens)

    def forward(self, tokens: Tensor, mask: Tensor, segments: Tensor | None = None) -> Tensor:
        """Logits: (B, n_labels) for classify, (B, T, n_labels) for tag, (B, T, 2) for span."""
        return self.head(self.hidden(tokens, mask, segments), mask)

    def num_params(self, embeddings: bool = True) -> int:
        return self.backbone.num_params(embeddings) + sum(p.numel() for p in self.head.parameters())
