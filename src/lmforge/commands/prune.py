"""`lmforge prune`: magnitude pruning of a fine-tuned run, with a before/after report (metric,
parameters, non-zero weights, file size, examples/s) and an int8 inference row. Every option is a field
of `PruneConfig`.

Example:
    lmforge prune --run runs/sent-bert --sparsity 0.5 --out runs/sent-bert-50
    lmforge prune --run runs/sent-bert --sparsity 0.5 --retrain-epochs 1 --out runs/sent-bert-50r
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.applications.pruning import PruneConfig, prune_run
from lmforge.config import add_config_args, config_from_args


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, PruneConfig, switches=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    result = prune_run(config_from_args(PruneConfig, args))
    metric = next((k for k in ("macro_f1", "token_accuracy", "word_f1", "f1", "micro_f1") if k in result["before"]),
                  None)
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
