"""`lmforge tokenize`: prepared documents -> memmapped token shards {train,val}.bin + meta.json.

Example (CPU, seconds):
    lmforge tokenize data/mycorpus --tokenizer tokenizers/bpe4k
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmforge.tokenization.corpus import tokenize_dataset


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("data", type=Path, help="a `lmforge prepare` output directory")
    parser.add_argument("--tokenizer", type=Path, required=True, help="directory holding tokenizer.json")
    parser.add_argument("--out", type=Path, default=None, help="default: DATA/tokens/<tokenizer name>")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace shards already in --out (runs trained on them may stop matching)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def run(args: argparse.Namespace) -> int:
    summary = tokenize_dataset(args.data, args.tokenizer, args.out, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(summary))
    return 0
