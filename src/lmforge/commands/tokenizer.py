"""`lmforge tokenizer train`: learn a BPE/WordPiece/Unigram/char/byte tokenizer from prepared text.

Example (CPU, seconds):
    lmforge tokenizer train data/mycorpus --kind bpe --vocab-size 4096 --out tokenizers/bpe4k
    lmforge tokenizer train data/en-de --kind bpe --vocab-size 4000 --joint --out tokenizers/en-de   # pairs
    lmforge tokenizer train data/en-de --side tgt --vocab-size 4000 --out tokenizers/de              # one side
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lmforge.data.pairs import is_pairs_dataset
from lmforge.errors import InputError
from lmforge.tokenization.corpus import train_pair_tokenizer, train_tokenizer_on
from lmforge.tokenization.training import KINDS


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    train = sub.add_parser("train", help="train a tokenizer on the train split of a prepared dataset")
    train.add_argument("data", type=Path, help="a `lmforge prepare` output directory")
    train.add_argument("--kind", choices=KINDS, default="bpe", help="tokenizer kind (default: bpe)")
    train.add_argument("--vocab-size", type=int, default=8192,
                       help="vocabulary size incl. special tokens (default: 8192)")
    train.add_argument("--out", type=Path, required=True, help="output directory (gets tokenizer.json)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a tokenizer already in --out (shards and runs made with it stop matching)")
    train.add_argument("--max-docs", type=int, default=None, help="train on at most this many documents (pairs)")
    train.add_argument("--side", choices=("joint", "src", "tgt"), default=None,
                       help="parallel datasets: train on both sides (joint, the default) or on one side")
    train.add_argument("--joint", action="store_const", dest="side", const="joint",
                       help="parallel datasets: one vocabulary for source and target (same as --side joint)")


def run(args: argparse.Namespace) -> int:
    if is_pairs_dataset(args.data):
        train_pair_tokenizer(args.data, args.side or "joint", args.kind, args.vocab_size, args.out, args.max_docs,
                             overwrite=args.overwrite)
        return 0
    if args.side is not None:
        raise InputError(f"--side/--joint: {args.data} is not a parallel dataset (prepare it with --pairs); drop it.")
    train_tokenizer_on(args.data, args.kind, args.vocab_size, args.out, args.max_docs, overwrite=args.overwrite)
    return 0
