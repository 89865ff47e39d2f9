"""Losses computed from model outputs; models only return tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmforge.training.distributed import unwrap

IGNORE = -100
HEAD_CHUNK = 512


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ weight.T` against targets, computed in row chunks: each chunk's
    logits become their own gradient (softmax - one-hot) at once, so the (N, V) logits, their
    log-softmax and its backward never exist in memory. On a CPU that traffic is a quarter of a
    small model's step; the matmul FLOPs are the same as the unfused head + loss."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor) -> Tensor:
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
            total += ((lse - logits.gather(1, t[:, None]).squeeze(1)) * keep).sum()
            grad = logits.sub_(lse[:, None]).exp_()                           # softmax, in place
            grad[torch.arange(len(t)), t] -= 1.0
            grad.mul_((keep / count)[:, None])                                # ignored rows: no gradient
            grad = grad.to(hidden.dtype)
            grad_hidden[start:start + HEAD_CHUNK] = grad @ weight
            grad_weight.addmm_(grad.t(), h)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None


def causal_lm(model: nn.Module, tokens: Tensor, targets: Tensor) -> Tensor:
    if tokens.device.type == "cpu" and not torch.is_autocast_enabled("cpu"):
        hidden = model(tokens, return_hidden=True)                              # (B, T, d_model)
        return LinearCrossEntropy.apply(hidden.flatten(0, 1), unwrap(model).lm_head.weight, targets.flatten())
    logits = model(tokens)                                                      # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


OBJECTIVES = {"causal_lm": causal_lm}
