"""`lmforge tokenize`: prepared documents -> memmapped token shards {train,val}.bin + meta.json.

A parallel dataset (`prepare --pairs`) becomes pair shards DATA/pair-tokens/<name> (source and target ids
of every pair); `train --model transformer --data DATA --tokenizer TOK` does this by itself.

Example (CPU, seconds):
    lmforge tokenize data/mycorpus --tokenizer tokenizers/bpe4k
    lmforge tokenize data/en-de --tokenizer tokenizers/en --tgt-tokenizer tokenizers/de
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lmforge.data.pairs import is_pairs_dataset
from lmforge.data.ray_executor import EXECUTORS
from lmforge.errors import InputError
from lmforge.tokenization.corpus import tokenize_dataset
from lmforge.tokenization.pairs import tokenize_pairs
from lmforge.tokenization.tokenizer import Tokenizer


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("data", type=Path, help="a `lmforge prepare` output directory")
    parser.add_argument("--tokenizer", type=Path, required=True, help="directory holding tokenizer.json")
    parser.add_argument("--tgt-tokenizer", type=Path, default=None,
                        help="parallel datasets: the target side's own tokenizer (default: --tokenizer for both)")
    parser.add_argument("--out", type=Path, default=None, help="default: DATA/tokens/<tokenizer name>")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace shards already in --out (runs trained on them may stop matching)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="ray: encode each clean file as a Ray task (same shards)")
    parser.add_argument("--ray-address", default=None,
                        help="with --executor ray: an existing cluster's address (auto: this machine's); "
                             "default: start a local Ray")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def run(args: argparse.Namespace) -> int:
    if is_pairs_dataset(args.data):
        out = tokenize_pairs(args.data, Tokenizer(args.tokenizer),
                             Tokenizer(args.tgt_tokenizer) if args.tgt_tokenizer else None, args.out, args.overwrite)
        if args.json:
            print(json.dumps({"out": str(out)}))
        return 0
    if args.tgt_tokenizer is not None:
        raise InputError(f"--tgt-tokenizer: {args.data} is not a parallel dataset; drop it.")
    summary = tokenize_dataset(args.data, args.tokenizer, args.out, overwrite=args.overwrite, executor=args.executor,
                               ray_address=args.ray_address)
    if args.json:
        print(json.dumps(summary))
    return 0
