"""Quality per wall-clock on ~4 MB of English, character level, CPU.

Reference: nanoGPT's CPU recipe as it ships (bench/nanogpt_recipe.py). Ours: the lmforge GPT at the
recipe's size (4 layers, 4 heads, 128 wide, context 64, batch 12) with the variants given by
--variants, in a plain loop whose schedule follows the clock as `lmforge train --max-time` does.
Every curve point is the loss over the whole val split (the same evaluation for both, not counted in the
clock). Prints, per variant, the time at which it first reached the reference's final loss.
    python bench/char_quality.py [--budget 120] [--variants adamw3e-3 muon]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import machine
from nanogpt_recipe import batch, train_recipe, whole_split_loss

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
            curve.append((round(clock, 1), step, round(whole_split_loss(model, val, ctx), 4)))
    print(json.dumps({"run": name, "final_val": curve[-1][2], "seconds": curve[-1][0], "steps": step,
                      "curve": curve}), flush=True)
    return curve


def reference(train, val, vocab):
    result = train_recipe(train, val, vocab)
    print(json.dumps({"run": "nanogpt-recipe", "final_val": result["val_loss"], "own_estimate": result["own_estimate"],
                      "seconds": round(result["seconds"], 1), "steps": 2000, "curve": result["curve"]}), flush=True)
    return result["curve"]


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
    target = reference(train, val, vocab)[-1]
    for variant in args.variants:
        curve = ours(variant, train, val, vocab, args.budget, args.eval_every)
        reached = next((t for t, _, loss in curve if loss <= target[2]), None)
        print(json.dumps({"variant": variant, "reference_final": target[2], "reference_seconds": target[0],
                          "lmforge_seconds_to_reference_loss": reached, "lmforge_loss_at_budget": curve[-1][2]}),
              flush=True)


if __name__ == "__main__":
    main()
