"""Quality per wall-clock on ~4 MB of English, character level, CPU.

Reference: nanoGPT's published CPU recipe (GPT-2 style: LayerNorm, learned positions, GELU MLP, tied
embeddings; 4 layers, 4 heads, 128 dim, context 64, batch 12, 2,000 iterations, AdamW lr 1e-3,
cosine to 1e-4), re-implemented here from its description. Ours: the lmforge `tiny` GPT with the
recipe variants given by --variants. Both run the same plain loop; evaluation time is not counted.
Prints, per variant, val loss at each eval and the time at which it first reached the reference's
final val loss.
    python bench/char_quality.py [--budget 120] [--variants adamw3e-3 muon]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import machine
from torch import nn

from lmforge.models.gpt import GPT, GPTConfig
from lmforge.training.optim import build_optimizers, lr_factor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def corpus(megabytes: float = 4.0) -> tuple[np.ndarray, np.ndarray, int]:
    texts = []
    for path in sorted((SHARED / "sotu_speeches").glob("*.jsonl.gz")):
        texts += [json.loads(line)["text"] for line in gzip.open(path, "rt")]
    text = "\n\n".join(texts)[: int(megabytes * 1e6)]
    chars = sorted(set(text))
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    ids = np.searchsorted(np.array([ord(c) for c in chars]), points).astype(np.int64)
    split = int(0.9 * len(ids))
    return ids[:split], ids[split:], len(chars)


class NanoBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class NanoGPT(nn.Module):
    """The GPT-2 layout nanoGPT uses (init normal 0.02, scaled residual projections)."""

    def __init__(self, vocab: int, ctx: int, d: int = 128, layers: int = 4, heads: int = 4):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(NanoBlock(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "out.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def batch(data, ctx, size, rng):
    starts = rng.integers(0, len(data) - ctx - 1, size)
    chunk = torch.from_numpy(data[starts[:, None] + np.arange(ctx + 1)])
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def val_loss(model, val, ctx, batches=20, size=32):
    model.eval()
    rng = np.random.default_rng(0)
    total = sum(F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                for x, y in (batch(val, ctx, size, rng) for _ in range(batches)))
    model.train()
    return total / batches


def run(name, model, optimizer_step, set_lr, train, val, ctx, size, max_steps, budget, eval_every):
    rng, clock, curve, step = np.random.default_rng(1), 0.0, [], 0
    while step < max_steps and clock < budget:
        start = time.perf_counter()
        set_lr(step, clock)
        x, y = batch(train, ctx, size, rng)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer_step()
        clock += time.perf_counter() - start
        step += 1
        if step % eval_every == 0 or step == max_steps or clock >= budget:
            curve.append((round(clock, 1), step, round(val_loss(model, val, ctx), 4)))
    print(json.dumps({"run": name, "final_val": curve[-1][2], "seconds": curve[-1][0], "steps": step,
                      "curve": curve}), flush=True)
    return curve


def reference(train, val, vocab, budget):
    torch.manual_seed(0)
    model = NanoGPT(vocab, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)

    def set_lr(step, clock):
        warm = min(1.0, (step + 1) / 100)
        cosine = 1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + math.cos(math.pi * min(step / 2000, 1)))
        for g in opt.param_groups:
            g["lr"] = 1e-3 * warm if step < 100 else cosine

    def step():
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run("nanogpt-recipe", model, step, set_lr, train, val, 64, 12, 2000, 10 * budget, 200)


VARIANTS = {  # name: (optimizer, lr, context, batch)
    "adamw1e-3": ("adamw", 1e-3, 64, 12), "adamw3e-3": ("adamw", 3e-3, 64, 12), "adamw6e-3": ("adamw", 6e-3, 64, 12),
    "adamw1e-2": ("adamw", 1e-2, 64, 12),
    "adamw3e-3-ctx128-b16": ("adamw", 3e-3, 128, 16), "muon": ("muon", 3e-3, 64, 12),
    "muon-ctx128-b16": ("muon", 3e-3, 128, 16),
}


def ours(variant, train, val, vocab, budget, eval_every):
    optimizer, lr, ctx, size = VARIANTS[variant]
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, max_seq_len=ctx, n_layers=4, n_heads=4, d_model=128))
    opts = build_optimizers(model, name=optimizer, lr=lr, weight_decay=0.1, betas=(0.9, 0.95), muon_lr=0.02,
                            device=torch.device("cpu"))

    def set_lr(step, clock):  # the schedule follows the clock, as `lmforge train --max-time` does
        opts.set_lr_factor(lr_factor(clock / budget, step, warmup_steps=50, schedule="cosine", min_lr_ratio=0.1,
                                     decay_fraction=0.2))

    def step():
        opts.step()
        opts.zero_grad()
    return run(f"lmforge-{variant}", model, step, set_lr, train, val, ctx, size, 10**9, budget, eval_every)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--variants", nargs="+", default=["adamw3e-3", "muon"])
    parser.add_argument("--eval-every", type=int, default=200)
    args = parser.parse_args()
    train, val, vocab = corpus()
    print(f"# {machine()}; {len(train) + len(val):,} chars, vocab {vocab}")
    target = reference(train, val, vocab, args.budget)[-1]
    for variant in args.variants:
        curve = ours(variant, train, val, vocab, args.budget, args.eval_every)
        reached = next((t for t, _, loss in curve if loss <= target[2]), None)
        print(json.dumps({"variant": variant, "reference_final": target[2], "reference_seconds": target[0],
                          "lmforge_seconds_to_reference_loss": reached, "lmforge_loss_at_budget": curve[-1][2]}),
              flush=True)


if __name__ == "__main__":
    main()
