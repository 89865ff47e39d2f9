"""Optimizers (AdamW with decay/no-decay groups; optional Muon for hidden matrices) and LR schedules."""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from lmforge.errors import InputError


class Optimizers:
    """One or two torch optimizers driven as one: step, zero_grad, LR factor, state dict."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers
        for opt in optimizers:
            for group in opt.param_groups:
                group.setdefault("base_lr", group["lr"])

    def set_lr_factor(self, factor: float) -> None:
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {str(i): opt.state_dict() for i, opt in enumerate(self.optimizers)}

    def load_state_dict(self, state: dict) -> None:
        for i, opt in enumerate(self.optimizers):
            opt.load_state_dict(state[str(i)])


def muon_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The hidden matrices Muon suits, chosen by module type: the weights of nn.Linear layers, except
    projections onto the vocabulary (output heads; a hidden layer exactly vocab_size wide would stay
    with AdamW too). Embeddings, vectors and recurrent cells (whose stacked gate matrices are no
    single linear map) stay with AdamW."""
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    return [m.weight for m in model.modules()
            if isinstance(m, nn.Linear) and m.weight.requires_grad and m.out_features != vocab_size]


def layer_scales(names: list[str], decay: float) -> dict[str, float]:
    """Layer-wise LR decay (as in ELECTRA/BEiT fine-tuning): a Transformer block k of L gets
    decay ** (L - k) of the LR, the embeddings and everything before the blocks decay ** (L + 1), the
    final norm and the task head 1."""
    blocks = [int(m.group(1)) for n in names if (m := _BLOCK.search(n))]
    depth = max(blocks) + 1 if blocks else 0
    scales = {}
    for n in names:
        match = _BLOCK.search(n)
        if match:
            scales[n] = decay ** (depth - int(match.group(1)))
        elif "embed" in n or "position" in n or "segment" in n:
            scales[n] = decay ** (depth + 1)
        else:
            scales[n] = 1.0
    return scales


_BLOCK = re.compile(r"\bblocks\.(\d+)\.")


def build_optimizers(model: nn.Module, *, name: str, lr: float, weight_decay: float, betas: tuple[float, float],
                     muon_lr: float, device: torch.device, layer_decay: float | None = None) -> Optimizers:
    """Matrices decay, vectors (norm gains, biases) do not. With Muon, the hidden matrices use Muon and
    everything else AdamW (as in the Muon paper). `layer_decay` (AdamW) scales each layer's LR."""
    sparse = sparse_tables(model)
    sparse_ids = {id(t) for t in sparse}
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in sparse_ids]
    dense = _dense_optimizers(model, params, name, lr, weight_decay, betas, muon_lr, device, layer_decay)
    if not sparse:
        return Optimizers(dense)
    # rows of big lookup tables: only those a batch touched are read and updated
    return Optimizers([*dense, torch.optim.SparseAdam(sparse, lr=lr, betas=betas)])


def _dense_optimizers(model, params, name, lr, weight_decay, betas, muon_lr, device, layer_decay) -> list:
    if not params:
        return []
    if layer_decay is not None:
        if name != "adamw":
            raise InputError("--layer-decay works with --optimizer adamw.")
        scales = layer_scales([n for n, _ in params], layer_decay)
        groups = {}
        for n, p in params:
            groups.setdefault((scales[n], p.dim() >= 2), []).append(p)
        return [torch.optim.AdamW(
            [{"params": ps, "lr": lr * scale, "weight_decay": weight_decay if matrix else 0.0}
             for (scale, matrix), ps in groups.items()], lr=lr, betas=betas, fused=device.type in ("cuda", "cpu"))]
    fused = device.type in ("cuda", "cpu")  # torch has fused AdamW kernels for both
    if name == "muon":
        hidden = muon_matrices(model)
        if not hidden:
            raise InputError("--optimizer muon: this model has no hidden linear matrices for Muon "
                             "(recurrent cells and embeddings use AdamW); use --optimizer adamw.")
        hidden_ids = {id(p) for p in hidden}
        rest = [(n, p) for n, p in params if id(p) not in hidden_ids]
        adamw = _adamw(rest, lr, weight_decay, betas, fused)
        muon = torch.optim.Muon(hidden, lr=muon_lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw")
        return [adamw, muon]
    if name == "sgd":  # the classic recurrent-LM recipe: plain SGD at a large LR with tight clipping
        return [torch.optim.SGD([p for _, p in params], lr=lr, weight_decay=weight_decay)]
    return [_adamw(params, lr, weight_decay, betas, fused)]


def sparse_tables(model: nn.Module) -> list[nn.Parameter]:
    """Weights of embeddings built with sparse=True (a bag of n-grams' hashed buckets): their gradients
    hold only the rows a batch used, which neither AdamW nor the usual gradient clipping accept."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse and m.weight.requires_grad]


def clip_gradients(parameters, max_norm: float) -> float:
    """Scale the gradients to a total L2 norm of at most max_norm; returns the norm before. Sparse
    gradients (rows of a lookup table) count their coalesced rows."""
    parameters = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in parameters):
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm).item()
    squares = []
    for p in parameters:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()   # repeated rows summed, so the norm is the true one
            squares.append(p.grad._values().float().pow(2).sum())
        else:
            squares.append(p.grad.float().pow(2).sum())
    total = torch.stack(squares).sum().sqrt().item()
    if total > max_norm and math.isfinite(total):
        for p in parameters:
            p.grad.mul_(max_norm / (total + 1e-6))
    return total


def _adamw(params, lr, weight_decay, betas, fused) -> torch.optim.AdamW:
    decay = [p for _, p in params if p.dim() >= 2]
    no_decay = [p for _, p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)


def lr_factor(progress: float, step: int, *, warmup_steps: int, schedule: str, min_lr_ratio: float,
              decay_fraction: float) -> float:
    """Multiplier of the peak LR: linear warmup over `warmup_steps`, then by `progress` in [0, 1]:
    cosine to min_lr_ratio, warmup-stable-decay (linear decay over the last decay_fraction), or constant."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "cosine":
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "wsd":
        decay_start = 1 - decay_fraction
        if progress <= decay_start:
            return 1.0
        return 1 - (1 - min_lr_ratio) * (progress - decay_start) / max(decay_fraction, 1e-9)
    return 1.0
