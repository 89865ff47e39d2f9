"""`lmforge quickstart`: prepare -> tokenizer -> tokenize -> train -> eval -> generate, on CPU, in minutes.

The default corpus is Python's own documentation (no download). Example:
    lmforge quickstart                       # ~4 minutes on 2 CPU cores
    lmforge quickstart --source my_texts/ --max-time 600
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.applications.quickstart import QuickstartConfig, run_quickstart
from lmforge.config import add_config_args, config_from_args


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, QuickstartConfig, switches=True)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")


def print_report(report: dict) -> None:
    train_tokens = report["tokens"]["train"]["tokens"]
    lines = [
        "", "lmforge quickstart report",
        f"  corpus          {report['corpus']}: {sum(report['corpus_bytes'].values()) / 1e6:.2f} MB clean text",
        f"  tokens          {train_tokens:,} train / {report['tokens']['val']['tokens']:,} val (BPE)",
        f"  model           GPT, {report['params'] / 1e6:.2f}M parameters, {report['steps']} steps",
        f"  speed           {report['tokens_per_s']:,.0f} tokens/s"
        + (f", MFU {100 * report['mfu']:.1f}%" if report.get("mfu") else ""),
        f"  val loss        {report['val_loss']:.3f} nats/token",
        f"  bits per byte   {report['bits_per_byte']:.3f} (unigram baseline {report['unigram_bits_per_byte']:.3f})",
        f"  sample          {report['sample']!r}",
        f"  run             {report['run_dir']}  (loss plot: {report['loss_plot']})",
        f"  total time      {report['seconds']:.0f}s",
        "", "next: lmforge generate --run " + report["run_dir"] + " --prompt 'The' --max-new-tokens 200",
    ]
    print("\n".join(lines), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    report = run_quickstart(config_from_args(QuickstartConfig, args))
    print_report(report)
    if args.json:
        print(json.dumps(report))
    return 0
