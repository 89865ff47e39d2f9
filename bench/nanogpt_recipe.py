"""nanoGPT's CPU recipe as nanoGPT ships it, re-implemented (no code copied) from its model.py, train.py
and README: the GPT-2 layout with `bias=False` (no biases in Linear and LayerNorm), tied embeddings,
normal(0.02) init with 0.02 / sqrt(2 * n_layer) on the residual projections; AdamW (betas 0.9/0.99,
weight decay 0.1 on the 2-D weights only), lr 1e-3 with 100 warm-up iterations then cosine to 1e-4 at
2,000, clipping 1.0; 4 layers, 4 heads, 128 wide, context 64, batch 12, 2,000 iterations, dropout 0
(`python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
--log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
--lr_decay_iters=2000 --dropout=0.0`).

Both its own estimate (20 random batches) and `whole_split_loss` are reported; comparisons use the
latter, the evaluation `lmforge eval` runs (every target of the split once, non-overlapping windows)."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmforge.evaluation.perplexity import nll_sums
from lmforge.training.batches import eval_windows

ITERS, WARMUP, LR, MIN_LR, CONTEXT, BATCH = 2000, 100, 1e-3, 1e-4, 64, 12


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (nanoGPT's, since torch's had no bias=False then)."""

    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = LayerNorm(d), LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)
        self.heads = heads

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class NanoGPT(nn.Module):
    def __init__(self, vocab: int, ctx: int = CONTEXT, d: int = 128, layers: int = 4, heads: int = 4):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                scaled = name.endswith(("c_proj.weight", "mlp_proj.weight"))
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers) if scaled else 0.02)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def batch(data: np.ndarray, ctx: int, size: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
    starts = rng.integers(0, len(data) - ctx - 1, size)
    chunk = torch.from_numpy(data[starts[:, None] + np.arange(ctx + 1)].astype(np.int64))
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def own_estimate(model, val: np.ndarray, ctx: int = CONTEXT, iters: int = 20) -> float:
    """nanoGPT's estimate_loss: the mean loss of `iters` random batches of the val split."""
    model.eval()
    rng = np.random.default_rng(0)
    losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
              for x, y in (batch(val, ctx, BATCH, rng) for _ in range(iters))]
    model.train()
    return float(np.mean(losses))


def whole_split_loss(model, val: np.ndarray, ctx: int) -> float:
    """Mean NLL over every target of the split, windows of `ctx` end to end (as `lmforge eval`)."""
    starts = eval_windows(val, ctx, None)
    return nll_sums(model, val, starts, ctx, 32, torch.device("cpu"), None, 1.0).report()["val_loss"]


def _optimizer(model: nn.Module) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                             lr=LR, betas=(0.9, 0.99))


def _lr(it: int) -> float:
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    ratio = min(1.0, (it - WARMUP) / (ITERS - WARMUP))
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def train_recipe(train: np.ndarray, val: np.ndarray, vocab: int, eval_every: int = 200, seed: int = 0) -> dict:
    """The recipe's 2,000 iterations; training seconds (evaluation excluded) and the curve of
    (seconds, iteration, whole-split loss); the final own estimate too."""
    torch.manual_seed(seed)
    model = NanoGPT(vocab)
    opt, rng, clock, curve = _optimizer(model), np.random.default_rng(seed + 1), 0.0, []
    for it in range(ITERS):
        start = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = _lr(it)
        x, y = batch(train, CONTEXT, BATCH, rng)
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        clock += time.perf_counter() - start
        if (it + 1) % eval_every == 0 or it + 1 == ITERS:
            curve.append((round(clock, 1), it + 1, round(whole_split_loss(model, val, CONTEXT), 4)))
    return {"seconds": clock, "curve": curve, "val_loss": curve[-1][2], "own_estimate": own_estimate(model, val),
            "model": model}
