"""`lmforge prepare`: raw text/Markdown/JSONL/Parquet -> clean train/val documents (and optionally tokens).

Example (CPU, seconds):
    lmforge prepare corpus/ --out data/mycorpus --tokenizer bpe --vocab-size 4096
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.config import add_config_args, build_config, values_from_args
from lmforge.data.prepare import PrepareConfig, prepare_corpus
from lmforge.tokenization.training import KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", type=Path, help="files or folders of .txt/.md/.jsonl(.gz)/.parquet")
    parser.add_argument("--out", type=Path, required=True, help="output dataset directory")
    parser.add_argument("--val-source", type=Path, action="append", default=[],
                        help="explicit validation files/folders (then all of `sources` is train)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier prepare output in --out")
    parser.add_argument("--tokenizer", choices=KINDS, help="also train a tokenizer of this kind and tokenize")
    parser.add_argument("--vocab-size", type=int, default=8192, help="with --tokenizer: vocabulary size")
    parser.add_argument("--json", action="store_true", help="print the stats as one JSON object on stdout")
    add_config_args(parser, PrepareConfig)


def run(args: argparse.Namespace) -> int:
    config = build_config(PrepareConfig, values_from_args(args, PrepareConfig), source="command line")
    stats = prepare_corpus(args.sources, args.out, config, args.val_source, args.overwrite)
    summary = {"out": str(args.out), **{k: stats[k] for k in ("docs_in", "bytes_in", "docs_out", "bytes_out",
                                                             "rejected_docs", "bad_records", "seconds")}}
    print(f"prepare: {stats['docs_in']:,} docs in -> {sum(stats['docs_out'].values()):,} out "
          f"{stats['docs_out']}, rejected {stats['rejected_docs']}, {stats['seconds']:.1f}s -> {args.out}",
          file=sys.stderr)
    if args.tokenizer:
        from lmforge.commands.tokenize import tokenize_dataset
        from lmforge.commands.tokenizer import train_tokenizer_on

        name = f"{args.tokenizer}{args.vocab_size}" if args.tokenizer != "byte" else "byte"
        tokenizer_dir = args.out / "tokenizers" / name
        train_tokenizer_on(args.out, args.tokenizer, args.vocab_size, tokenizer_dir)
        summary["tokens"] = tokenize_dataset(args.out, tokenizer_dir, None)
    if args.json:
        print(json.dumps(summary))
    return 0
