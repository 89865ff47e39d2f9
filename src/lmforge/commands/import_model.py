"""`lmforge import`: a local Hugging Face Llama-layout folder (config.json, safetensors, tokenizer.json) as
an lmforge GPT run, checked by running both on the same tokens (with `transformers` installed). The
run then serves generate, eval --data, chat-less serve, and finetune --init.

Example (CPU, seconds):
    lmforge import hf/some-llama-dir --out runs/imported
    lmforge generate --run runs/imported "Once upon a time"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.interop.hf_import import import_run
from lmforge.interop.parity import describe


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("source", type=Path, help="Hugging Face model folder (Llama layout)")
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")
    parser.add_argument("--no-verify", action="store_true", help="import without comparing logits with transformers")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    summary = import_run(args.source, args.out, args.overwrite, not args.no_verify)
    print(f"imported {summary['source']} -> {summary['out']} ({summary['architecture']}, {summary['params']:,} "
          f"params, {summary['dtype']} weights)\n{describe(summary['verified'])}",
          file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary))
    return 1 if summary["verified"].get("passed") is False else 0
