"""The CPU recipe behind the translation `tiny` defaults: 4-minute runs of the documented command
(`lmforge train --model M --max-time 240`, then `lmforge eval --split valid --beam 1 --max-pairs 500`) on
gettext en-de, the defaults against the low-resource literature's heavy regularisation and the other sizes,
batches and learning rates tried. Prints validation loss (target NLL, first 500 valid pairs) and greedy chrF.
    python bench/translation_recipe.py [--budget 240] [--only "transformer: default" ...]
(run bench/translation.py first: it makes the data; --only keeps the variants whose "model: label" contains
one of the strings)
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import machine
from translation import lmforge, prepare

HEAVY = ["--dropout", "0.3", "--word-dropout", "0.1", "--batch-tokens", "2048"]
PRE_NORM = ["--norm-position", "pre", "--scale-embeddings", "false"]
VARIANTS = {
    "seq2seq-gru": {"default": [], "heavy (0.3, word dropout 0.1, 2,048 tokens)": HEAVY,
                    "2,048-token batches": ["--batch-tokens", "2048"]},
    "transformer": {"default (2+2, post-norm, scaled embeddings, LR 5e-4)": [],
                    "pre-norm, LR 2e-3 (the default until 2026-12-02)": [*PRE_NORM, "--lr", "2e-3"],
                    "pre-norm, LR 1e-3": [*PRE_NORM, "--lr", "1e-3"], "pre-norm, LR 5e-4": [*PRE_NORM, "--lr", "5e-4"],
                    "post-norm, LR 1e-3": ["--lr", "1e-3"],
                    "3+3 layers": ["--enc-layers", "3", "--dec-layers", "3"],
                    "3+3, heavy (0.3/0.1, word dropout 0.1, 2,048 tokens)":
                        ["--enc-layers", "3", "--dec-layers", "3", "--attn-dropout", "0.1", *HEAVY]},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=240)
    parser.add_argument("--out", type=Path, default=Path("/tmp/lmforge-bench-mt"))
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only the variants whose 'model: label' contains one of these strings")
    args = parser.parse_args()
    shards = prepare(args.out)
    print(f"# {machine()}; {args.budget:.0f} s each", flush=True)
    for model, variants in VARIANTS.items():
        for number, (label, flags) in enumerate(variants.items()):
            if args.only and not any(part in f"{model}: {label}" for part in args.only):
                continue
            run = args.out / "recipe" / f"{model}-{number}"
            shutil.rmtree(run, ignore_errors=True)
            lmforge("train", "--data", str(shards), "--model", model, *flags, "--out", str(run),
                    "--max-time", str(args.budget))
            val = [json.loads(line) for line in (run / "metrics.jsonl").open() if "val_loss" in line][-1]
            result = lmforge("eval", "--run", str(run), "--split", "valid", "--beam", "1", "--max-pairs", "500",
                             "--json")
            print(json.dumps({"model": model, "variant": label, "flags": " ".join(flags), "steps": val["step"],
                              "val_loss": round(val["val_loss"], 3), "chrf_greedy": round(result["chrf"], 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
