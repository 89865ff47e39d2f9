"""BERT masked LM: lmforge's training loop (`train()`, the code `lmforge train --model bert` runs) against
Hugging Face `BertForMaskedLM` of the same shape in a plain loop, on the same masked batches (the same
sampler and seed), the same AdamW settings and schedule, for the same number of steps. Like for like:
HF's BERT is post-norm, so lmforge's post-norm BERT (`--norm-position post`, whose logits equal HF's on
copied weights) is compared with it at one shared learning rate, for each of --lrs; lmforge's default
pre-norm BERT runs beside at the same rates. Reports training tokens/s (steps only, both sides) and
masked-token accuracy / loss on the same fixed validation batches.
    python bench/bert_mlm.py [--steps 300]       (run bench/cli_defaults.py first: it makes the corpus)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import machine
from torch import nn

from lmforge.data.shards import read_meta
from lmforge.evaluation.masked import masked_sums
from lmforge.models.bert import BERT, PRESETS, BERTConfig
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.batches import eval_windows
from lmforge.training.config import TrainConfig
from lmforge.training.loop import TrainSetup, train
from lmforge.training.masked_lm import masked_eval_batches, masking_rule
from lmforge.training.optim import build_optimizers, lr_factor
from lmforge.training.recipes import DataContext, lm_spec, recipe_for

WORK = Path("/tmp/lmforge-bench-cli")


def shards() -> Path:
    out = WORK / "data" / "tokens" / "wp8k"
    if not (out / "meta.json").exists():
        cli = [sys.executable, "-m", "lmforge"]
        subprocess.run([*cli, "tokenizer", "train", WORK / "data", "--kind", "wordpiece", "--vocab-size", "8192",
                        "--out", WORK / "tok" / "wp8k"], check=True, capture_output=True)
        subprocess.run([*cli, "tokenize", WORK / "data", "--tokenizer", WORK / "tok" / "wp8k"], check=True,
                       capture_output=True)
    return out


class HFAsEncoder(nn.Module):
    """HF BertForMaskedLM seen through our encoder interface (hidden + mlm_head), for the same evaluation."""

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def hidden(self, tokens):
        return self.hf.bert(input_ids=tokens).last_hidden_state

    def mlm_head(self, hidden):
        return self.hf.cls(hidden)


def hf_loop(config: BERTConfig, sampler, steps: int, train_config: TrainConfig) -> tuple[nn.Module, float]:
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    hf = BertForMaskedLM(BertConfig(vocab_size=config.vocab_size, hidden_size=config.d_model,
                                    num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
                                    intermediate_size=config.d_ff, max_position_embeddings=config.max_seq_len,
                                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                    attn_implementation="sdpa"))
    c = train_config
    opt = build_optimizers(hf, name="adamw", lr=c.lr, weight_decay=c.weight_decay, betas=(c.beta1, c.beta2),
                           muon_lr=c.muon_lr, device=torch.device("cpu"))
    warmup = max(1, round(c.warmup_fraction * steps))
    clock = 0.0
    for step in range(steps):
        start = time.perf_counter()
        opt.set_lr_factor(lr_factor(step / steps, step, warmup_steps=warmup, schedule="cosine",
                                    min_lr_ratio=c.min_lr_ratio, decay_fraction=c.decay_fraction))
        batch = sampler.micro_batch(step, 0)
        hf(input_ids=batch.tokens, labels=batch.targets).loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), c.grad_clip)
        opt.step()
        opt.zero_grad()
        clock += time.perf_counter() - start
    return HFAsEncoder(hf).eval(), clock


def ours(config: BERTConfig, train_config: TrainConfig, meta, tokenizer, recipe, name: str) -> tuple[nn.Module, dict]:
    torch.manual_seed(train_config.seed)
    model = BERT(config)
    run = WORK / "runs" / name
    subprocess.run(["rm", "-rf", str(run)])
    run.mkdir(parents=True)
    spec = lm_spec(recipe, meta.tokens("train"), None, tokenizer, config.max_seq_len, source=str(run))
    return model, train(TrainSetup(run_dir=run, model=model, config=train_config, spec=spec, family="bert"))


def scored(model, val, starts, ctx, rule) -> dict:
    """Masked-LM loss and accuracy on the fixed validation batches (the same masks for every model)."""
    return masked_sums(model.eval(), masked_eval_batches(val, starts, ctx.seq_len, ctx.batch_size, rule),
                       torch.device("cpu")).report()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lrs", type=float, nargs="+", default=[2e-3, 5e-4],
                        help="shared learning rates (2e-3 is the tiny preset's)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    meta = read_meta(shards())
    tokenizer = Tokenizer(meta.directory / "tokenizer.json")
    recipe = recipe_for("bert")
    val = meta.tokens("val")
    rows = []
    for lr in args.lrs:
        train_config = TrainConfig(**{**recipe.train_presets["tiny"], "lr": lr}, max_steps=args.steps,
                                   eval_every=10**9, checkpoint_every=10**9, threads=2)
        pre = BERTConfig(vocab_size=meta.vocab_size, **PRESETS["tiny"])
        post = BERTConfig(vocab_size=meta.vocab_size, **PRESETS["tiny"], norm_position="post")
        ctx = DataContext(pre.max_seq_len, train_config.batch_size, 1, train_config.seed, tokenizer)
        rule = masking_rule(tokenizer, ctx.masked_lm)
        starts = eval_windows(val, pre.max_seq_len - 1, 64)
        tokens_per_step = train_config.batch_size * pre.max_seq_len
        print(f"# {machine()}; BERT tiny (4 x 128), WordPiece 8k, batch {train_config.batch_size} x "
              f"{pre.max_seq_len}, {args.steps} steps, lr {lr}", flush=True)

        for label, config in (("lmforge BERT post-norm", post), ("lmforge BERT pre-norm (default)", pre)):
            model, summary = ours(config, train_config, meta, tokenizer, recipe, f"bert-{config.norm_position}-{lr}")
            rows.append({"run": label, "lr": lr, "tokens_per_s": summary["tokens_per_s"],
                         **scored(model, val, starts, ctx, rule)})
            print(json.dumps(rows[-1]), flush=True)
        hf, seconds = hf_loop(post, recipe.sampler(meta.tokens("train"), ctx), args.steps, train_config)
        rows.append({"run": "HF BertForMaskedLM (post-norm), plain loop", "lr": lr,
                     "tokens_per_s": args.steps * tokens_per_step / seconds, **scored(hf, val, starts, ctx, rule)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'run':<45} {'lr':>7} {'tokens/s':>9} {'MLM loss':>9} {'masked acc':>10}")
    for r in rows:
        print(f"{r['run']:<45} {r['lr']:>7.0e} {r['tokens_per_s']:>9,.0f} {r['mlm_loss']:>9.3f} "
              f"{100 * r['masked_accuracy']:>9.1f}%")


if __name__ == "__main__":
    main()
