"""`lmforge eval`: validation loss, perplexity and bits-per-byte of a run on any shard directory.

Example (CPU, seconds):
    lmforge eval --run runs/tiny --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from lmforge.data.shards import check_shards_match, read_meta
from lmforge.errors import InputError
from lmforge.evaluation.perplexity import nll_sums
from lmforge.inference.loading import load_run
from lmforge.training.batches import eval_windows
from lmforge.training.distributed import pick_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run directory")
    parser.add_argument("--data", type=Path, help="token shard directory (default: the run's own)")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--max-tokens", type=int, default=None, help="evaluate at most this many tokens")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def evaluate_run(run: Path, data: Path | None = None, split: str = "val", max_tokens: int | None = None,
                 batch_size: int = 8, device: str = "auto") -> dict:
    device = pick_device(device)
    model, tokenizer, config = load_run(run, device)
    meta = read_meta(Path(data or config["data"]["shards"]))
    check_shards_match(meta, vocab_size=model.config.vocab_size, tokenizer_sha256=tokenizer.sha256,
                       owner=f"run {run}")
    tokens = meta.tokens(split)
    seq_len = int(config.get("train", {}).get("seq_len") or model.config.max_seq_len)
    max_windows = None if max_tokens is None else max(1, max_tokens // seq_len)
    starts = eval_windows(tokens, seq_len, max_windows)
    if len(starts) == 0:
        raise InputError(f"{meta.directory}/{split}.bin: {len(tokens)} tokens, fewer than one window of "
                         f"{seq_len + 1}; evaluate a larger split.")
    sums = nll_sums(model, tokens, starts, seq_len, batch_size, device, tokenizer.token_byte_lengths(),
                    meta.bytes_per_token(split), torch.bfloat16 if device.type == "cuda" else None)
    return {**sums.report(), "split": split, "shards": str(meta.directory), "run": str(run)}


def run(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise InputError(f"--batch-size must be positive, got {args.batch_size}.")
    result = evaluate_run(args.run, args.data, args.split, args.max_tokens, args.batch_size, args.device)
    print(f"eval {result['split']}: loss {result['val_loss']:.4f} nats/token, perplexity {result['perplexity']:.2f}, "
          f"{result['bits_per_byte']:.4f} bits/byte over {result['tokens']:,} tokens", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0
