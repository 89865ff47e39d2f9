"""What the documented commands give with their defaults, on ~4 MB of English prose, character level.

Runs the CLI itself (prepare -> char tokenizer -> tokenize -> `lmforge train --model M --preset tiny
--max-time T` -> `lmforge eval`) for each family, then nanoGPT's published CPU recipe (from
char_quality.py) on the same train/val tokens, and prints one table (and `lmforge compare`'s).
    python bench/cli_defaults.py [--families gpt lstm gru rnn] [--budgets 60 120] [--reference]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LMFORGE = [sys.executable, "-m", "lmforge"]


def cli(*args, capture_json: bool = False):
    result = subprocess.run([*LMFORGE, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lmforge {' '.join(map(str, args))} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout) if capture_json else None


def corpus(work: Path, megabytes: float) -> Path:
    """The first ~N MB of the SOTU speeches (in file order) as one JSONL document per speech."""
    out = work / "corpus" / "sotu.jsonl"
    if out.exists():
        return out.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(out, "w") as handle:
        for path in sorted((SHARED / "sotu_speeches").glob("*.jsonl.gz")):
            for line in gzip.open(path, "rt"):
                text = json.loads(line)["text"]
                if size >= megabytes * 1e6:
                    return out.parent
                handle.write(json.dumps({"text": text}) + "\n")
                size += len(text.encode())
    return out.parent


def shards(work: Path, megabytes: float) -> Path:
    tokens = work / "data" / "tokens" / "char"
    if not (tokens / "meta.json").exists():
        cli("prepare", corpus(work, megabytes), "--out", work / "data", "--val-fraction", "0.1", "--overwrite")
        cli("tokenizer", "train", work / "data", "--kind", "char", "--vocab-size", "256",
            "--out", work / "tok" / "char")
        cli("tokenize", work / "data", "--tokenizer", work / "tok" / "char")
    return tokens


def reference(tokens: Path) -> dict:
    """nanoGPT's CPU recipe as shipped (2,000 iterations) on the same shards: its loss over the whole val
    split (the evaluation `lmforge eval` runs, at its context of 64) and its own 20-batch estimate."""
    import torch
    from nanogpt_recipe import train_recipe

    train = np.memmap(tokens / "train.bin", dtype=np.uint16, mode="r").astype(np.int64)
    val = np.memmap(tokens / "val.bin", dtype=np.uint16, mode="r").astype(np.int64)
    vocab = json.loads((tokens / "meta.json").read_text())["vocab_size"]
    torch.set_num_threads(2)
    started = time.perf_counter()
    result = train_recipe(train, val, vocab, eval_every=2000)
    return {"run": "nanoGPT recipe (2,000 its)", "val_loss": result["val_loss"], "own_estimate": result["own_estimate"],
            "seconds": result["seconds"], "wall": time.perf_counter() - started}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", nargs="+", default=["gpt", "lstm", "gru", "rnn"])
    parser.add_argument("--budgets", nargs="+", type=float, default=[60, 120])
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lmforge-bench-cli"))
    parser.add_argument("--reference", action="store_true", help="also run nanoGPT's recipe")
    parser.add_argument("--shards", type=Path, help="use these token shards (e.g. quickstart/data/tokens/bpe)")
    args = parser.parse_args()
    tokens = args.shards or shards(args.work, args.megabytes)
    print(f"# {machine()}; {json.loads((tokens / 'meta.json').read_text())['splits']}", flush=True)
    rows = [reference(tokens)] if args.reference else []
    if rows:
        print(json.dumps(rows[-1]), flush=True)
    for budget in args.budgets:
        runs = []
        for family in args.families:
            run = args.work / "runs" / f"{tokens.name}-{family}-{budget:.0f}s"
            subprocess.run(["rm", "-rf", str(run)])
            summary = cli("train", "--data", tokens, "--model", family, "--preset", "tiny", "--out", run,
                          "--max-time", budget, "--json", capture_json=True)
            result = cli("eval", "--run", run, "--json", capture_json=True)
            rows.append({"run": f"lmforge {family} tiny --max-time {budget:.0f}", "val_loss": result["val_loss"],
                         "bits_per_byte": result.get("bits_per_byte"), "steps": summary["steps"],
                         "tokens_per_s": summary["tokens_per_s"], "params": summary["params"],
                         "masked_accuracy": result.get("masked_accuracy")})
            print(json.dumps(rows[-1]), flush=True)
            runs.append(run)
        if len(runs) > 1:
            out = subprocess.run([*LMFORGE, "compare", *runs, "--out", args.work / f"compare-{budget:.0f}s.png"],
                                 capture_output=True, text=True)
            print(out.stderr, flush=True)


if __name__ == "__main__":
    main()
