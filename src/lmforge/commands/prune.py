"""`lmforge prune`: magnitude pruning of a fine-tuned run, with a before/after report (metric,
parameters, non-zero weights, file size, examples/s) and an int8 inference row.

Example:
    lmforge prune --run runs/sent-bert --sparsity 0.5 --out runs/sent-bert-50
    lmforge prune --run runs/sent-bert --sparsity 0.5 --retrain-epochs 1 --out runs/sent-bert-50r
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.applications.pruning import prune_run


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--run", type=Path, required=True, help="fine-tuned run (lmforge finetune)")
    parser.add_argument("--sparsity", type=float, required=True, help="share of Linear weights to zero, in [0, 1)")
    parser.add_argument("--per-layer", action="store_true", help="the same sparsity in every layer (default: global)")
    parser.add_argument("--retrain-epochs", type=float, default=0.0,
                        help="then fine-tune this many epochs on the run's own training data, pruned weights "
                             "held at zero (e.g. 1)")
    parser.add_argument("--retrain-lr", type=float, default=1e-4, help="peak LR of that re-fine-tuning")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 dynamic-quantization row")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    result = prune_run(args.run, args.out, args.sparsity, args.per_layer, not args.no_int8, args.overwrite,
                       args.retrain_epochs, args.retrain_lr)
    metric = next((k for k in ("macro_f1", "token_accuracy", "word_f1") if k in result["before"]), None)
    print(f"{'':<11} {metric or 'metric':>14} {'params':>10} {'non-zero':>10} {'file MB':>8} {'gzip MB':>8} "
          f"{'examples/s':>11}", file=sys.stderr)
    for name in ("before", "after_pruning", "after", "after_int8"):
        row = result.get(name)
        if row:
            label = {"after_pruning": "pruned", "after": "retrained" if "after_pruning" in result else "after"}
            print(f"{label.get(name, name):<11} {row.get(metric, float('nan')):>14.4f} {row.get('parameters', 0):>10,} "
                  f"{row.get('nonzero_parameters', 0):>10,} {row.get('file_mb', 0):>8.2f} "
                  f"{row.get('gzip_mb', 0):>8.2f} {row.get('examples_per_s', float('nan')):>11,.0f}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0
