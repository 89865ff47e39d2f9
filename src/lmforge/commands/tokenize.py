"""`lmforge tokenize`: prepared documents -> memmapped token shards {train,val}.bin + meta.json.

Example (CPU, seconds):
    lmforge tokenize data/mycorpus --tokenizer tokenizers/bpe4k
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.errors import InputError
from lmforge.tokenization.corpus import tokenize_corpus
from lmforge.tokenization.tokenizer import Tokenizer


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("data", type=Path, help="a `lmforge prepare` output directory")
    parser.add_argument("--tokenizer", type=Path, required=True, help="directory holding tokenizer.json")
    parser.add_argument("--out", type=Path, default=None, help="default: DATA/tokens/<tokenizer name>")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace shards already in --out (runs trained on them may stop matching)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def tokenize_dataset(data: Path, tokenizer_dir: Path, out: Path | None, overwrite: bool = False) -> dict:
    tokenizer = Tokenizer(tokenizer_dir)
    out = out or Path(data) / "tokens" / tokenizer.name
    if (Path(out) / "meta.json").exists() and not overwrite:
        raise InputError(f"{out}: already holds token shards; runs trained on them would stop matching if they "
                         "were replaced. Choose another --out, or pass --overwrite.")
    summary = tokenize_corpus(data, tokenizer, out)
    splits = ", ".join(f"{k} {v['tokens']:,} tokens" for k, v in summary["splits"].items())
    print(f"tokenize: {splits} ({summary['dtype']}) at {summary['mb_per_s']:.1f} MB/s -> {out}", file=sys.stderr)
    return summary


def run(args: argparse.Namespace) -> int:
    summary = tokenize_dataset(args.data, args.tokenizer, args.out, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(summary))
    return 0
