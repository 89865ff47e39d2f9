"""Training tokens/s on CPU (fp32): lmforge GPT vs Hugging Face LlamaForCausalLM, same shape and batch.

Both run the same plain PyTorch loop (loss, backward, AdamW step); lmforge's loss is its training
objective (on CPU the head and cross-entropy are fused), HF's is logits + F.cross_entropy. Prints tokens/s,
the ratio, and MFU against the machine's measured fp32 matmul peak.
    python bench/train_throughput.py [--presets tiny small] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from common import fp32_matmul_peak, hf_llama, machine, ours

from lmforge.models.gpt import PRESETS, GPTConfig
from lmforge.training.batches import LMBatch
from lmforge.training.objectives import TrainingView, causal_lm

SHAPES = {"tiny": dict(batch=16, seq=256), "small": dict(batch=8, seq=256)}


def time_steps(model, loss_fn, vocab: int, batch: int, seq: int, steps: int, warmup: int = 3) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, vocab, (batch, seq + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        loss = loss_fn(model, x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return batch * seq * steps / (time.perf_counter() - start)


def hf_loss(model, x, y):
    return F.cross_entropy(model(input_ids=x).logits.flatten(0, 1), y.flatten())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()
    peak = fp32_matmul_peak()
    print(f"# {machine()}; measured fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    results = []
    for preset in args.presets:
        shape = SHAPES.get(preset, dict(batch=4, seq=256))
        config = GPTConfig(vocab_size=args.vocab_size, **{**PRESETS[preset], "max_seq_len": shape["seq"]})
        model = ours(config)
        # lmforge's step is its training objective (fused head + loss on CPU); HF's is logits + F.cross_entropy
        lm = time_steps(TrainingView(model, causal_lm), lambda net, x, y: net(LMBatch(x, y)), config.vocab_size,
                        shape["batch"], shape["seq"], args.steps)
        hf = time_steps(hf_llama(config), hf_loss, config.vocab_size, shape["batch"], shape["seq"], args.steps)
        mfu = lm * model.flops_per_token(shape["seq"]) / peak
        row = {"preset": preset, "params_M": round(model.num_params() / 1e6, 2), **shape,
               "lmforge_tok_s": round(lm), "hf_llama_tok_s": round(hf), "ratio": round(lm / hf, 2),
               "lmforge_mfu": round(mfu, 3)}
        results.append(row)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
