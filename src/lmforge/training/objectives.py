"""Objectives: the loss of a typed batch, `objective(view, batch) -> Tensor`; models only return tensors.

`view` is the `TrainingView` the loop builds around the model: its `forward(batch)` is the objective's
loss, so DDP and FSDP wrap the backbone, the heads and the loss together (FSDP gathers the head's
sharded weights where the loss uses them); `view.hidden(...)` is the backbone's `hidden` (compiled
with --compile) and `view.model` the model whose heads the objective applies."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmforge.evaluation.masked import IGNORE
from lmforge.training.batches import LMBatch, MLMBatch

HEAD_CHUNK = 512


class TrainingView(nn.Module):
    """What the loop trains and DDP/FSDP wrap: forward(batch) = objective(self, batch), the loss."""

    def __init__(self, model: nn.Module, objective, compile: bool = False):
        super().__init__()
        self.model = model
        self.objective = objective
        self._hidden = torch.compile(model.hidden) if compile else model.hidden

    def hidden(self, *inputs):
        return self._hidden(*inputs)

    def forward(self, batch) -> Tensor:
        return self.objective(self, batch)


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ weight.T` against targets, computed in row chunks: each chunk's
    logits become their own gradient (softmax - one-hot) at once, so the (N, V) logits, their
    log-softmax and its backward never exist in memory. On a CPU that traffic is a quarter of a
    small model's step; the matmul FLOPs are the same as the unfused head + loss."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, smoothing: float = 0.0) -> Tensor:
        valid = targets != IGNORE
        count = max(int(valid.sum()), 1)
        safe_targets = torch.where(valid, targets, 0)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight)
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.size(0), HEAD_CHUNK):
            h = hidden[start:start + HEAD_CHUNK]                              # (c, d)
            t, keep = safe_targets[start:start + HEAD_CHUNK], valid[start:start + HEAD_CHUNK]
            logits = (h @ weight.t()).float()                                 # (c, V)
            lse = torch.logsumexp(logits, dim=-1)                             # (c,)
            picked = logits.gather(1, t[:, None]).squeeze(1)
            if smoothing:   # (1 - e) * NLL + e * the cross-entropy against the uniform distribution
                total += ((lse - (1 - smoothing) * picked - smoothing * logits.mean(dim=-1)) * keep).sum()
            else:
                total += ((lse - picked) * keep).sum()
            grad = logits.sub_(lse[:, None]).exp_()                           # softmax, in place
            grad[torch.arange(len(t)), t] -= 1.0 - smoothing
            if smoothing:
                grad.sub_(smoothing / logits.size(1))
            grad.mul_((keep / count)[:, None])                                # ignored rows: no gradient
            grad = grad.to(hidden.dtype)
            grad_hidden[start:start + HEAD_CHUNK] = grad @ weight
            grad_weight.addmm_(grad.t(), h)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None


def lm_loss(hidden: Tensor, head: nn.Linear, targets: Tensor, smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy of head(hidden) (B, T, d) against targets (B, T), label-smoothed by `smoothing`;
    fused on CPU in fp32."""
    if hidden.device.type == "cpu" and not torch.is_autocast_enabled("cpu"):
        return LinearCrossEntropy.apply(hidden.flatten(0, 1), head.weight, targets.flatten(), smoothing)
    logits = head(hidden)                                                       # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE,
                           label_smoothing=smoothing)


def causal_lm(view: TrainingView, batch: LMBatch) -> Tensor:
    """Next-token loss of a Transformer decoder over independent windows."""
    hidden = view.hidden(batch.tokens)                                              # (B, T, d_model)
    return lm_loss(hidden, view.model.lm_head, batch.targets)


def recurrent_lm(view: TrainingView, batch: LMBatch) -> Tensor:
    """Next-token loss of a recurrent model reading its stream on from the carried state; the new
    state is detached (truncated BPTT) and handed back for the next window."""
    state = batch.carry.state if batch.carry is not None else None
    hidden, state = view.hidden(batch.tokens, state, batch.resets)                  # (B, T, d_model)
    if batch.carry is not None:
        batch.carry.state = tuple(s.detach() for s in state)
    return lm_loss(hidden, view.model.lm_head, batch.targets)


def masked_lm(view: TrainingView, batch: MLMBatch) -> Tensor:
    """Cross-entropy at the masked positions only: the MLM head runs on those rows alone (~15%)."""
    hidden = view.hidden(batch.tokens)                                              # (B, T, d_model)
    picked = batch.targets != IGNORE                                            # (B, T)
    logits = view.model.mlm_head(hidden[picked])                                    # (n_masked, V)
    if logits.size(0) == 0:
        return hidden.sum() * 0.0  # nothing masked in this micro-batch: no signal, but a valid graph
    return F.cross_entropy(logits.float(), batch.targets[picked])


def classify(view: TrainingView, batch) -> Tensor:
    """Cross-entropy of the sequence head (weighted per class), or binary cross-entropy per label for
    multi-label tasks (labels are then multi-hot rows)."""
    hidden = view.hidden(batch.tokens, batch.mask, batch.segments)                  # (B, T, d)
    model = view.model
    logits = model.head(hidden, batch.mask).float()                             # (B, n_labels)
    if batch.labels.dtype.is_floating_point:
        return F.binary_cross_entropy_with_logits(logits, batch.labels)
    return F.cross_entropy(logits, batch.labels, weight=model.class_weights)


def tag(view: TrainingView, batch) -> Tensor:
    """Cross-entropy of the token head at each word's first piece (IGNORE elsewhere)."""
    hidden = view.hidden(batch.tokens, batch.mask, batch.segments)                  # (B, T, d)
    model = view.model
    logits = model.head(hidden, batch.mask).float()                             # (B, T, n_labels)
    return F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten(), weight=model.class_weights,
                           ignore_index=IGNORE)


def span(view: TrainingView, batch) -> Tensor:
    """Mean of the start and end cross-entropies over each window's positions (padding excluded);
    a window without the answer points at position 0 ([CLS])."""
    hidden = view.hidden(batch.tokens, batch.mask, batch.segments)                  # (B, T, d)
    logits = view.model.head(hidden, batch.mask).float()                            # (B, T, 2)
    logits = logits.masked_fill(~batch.mask.unsqueeze(-1), -1e4)
    start_loss = F.cross_entropy(logits[..., 0], batch.labels[:, 0])
    return (start_loss + F.cross_entropy(logits[..., 1], batch.labels[:, 1])) / 2


def seq2seq(view: TrainingView, batch) -> Tensor:
    """Label-smoothed cross-entropy of each next target token given the source and the target so far
    (teacher forcing); `batch.scale` turns the micro-batch's token mean into its share of the step's."""
    hidden = view.hidden(batch.src, batch.src_mask, batch.tgt_in)                   # (B, T, d)
    return lm_loss(hidden, view.model.lm_head, batch.tgt_out, batch.smoothing) * batch.scale


OBJECTIVES = {"causal_lm": causal_lm, "recurrent_lm": recurrent_lm, "masked_lm": masked_lm, "classify": classify,
              "tag": tag, "span": span, "seq2seq": seq2seq}
