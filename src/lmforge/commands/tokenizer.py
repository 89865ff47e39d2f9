"""`lmforge tokenizer train`: learn a BPE/WordPiece/Unigram/char/byte tokenizer from prepared text.

Example (CPU, seconds):
    lmforge tokenizer train data/mycorpus --kind bpe --vocab-size 4096 --out tokenizers/bpe4k
"""

from __future__ import annotations

import argparse
import sys
from itertools import islice
from pathlib import Path

from lmforge.data.readers import iter_clean_texts
from lmforge.errors import InputError
from lmforge.tokenization.corpus import clean_dir
from lmforge.tokenization.tokenizer import FILENAME
from lmforge.tokenization.training import KINDS, train_tokenizer


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
    train.add_argument("--max-docs", type=int, default=None, help="train on at most this many documents")


def _limited_bytes(texts, max_bytes: int):
    seen = 0
    for text in texts:
        yield text
        seen += len(text)
        if seen >= max_bytes:
            return


def train_tokenizer_on(data: Path, kind: str, vocab_size: int, out: Path, max_docs: int | None = None,
                       max_chars: int = 500_000_000, overwrite: bool = False) -> Path:
    """Train on the train split of `data` and write `out/tokenizer.json` (refusing to replace one)."""
    if (Path(out) / FILENAME).exists() and not overwrite:
        raise InputError(f"{Path(out) / FILENAME}: a tokenizer is already there; shards and runs made with it would "
                         "stop matching if it were replaced. Choose another --out, or pass --overwrite.")
    folder = clean_dir(data)
    if vocab_size <= 0:
        raise InputError(f"--vocab-size must be positive, got {vocab_size}.")
    texts = _limited_bytes(islice(iter_clean_texts(folder, "train"), max_docs), max_chars)
    tokenizer = train_tokenizer(kind, texts, vocab_size, source=str(folder))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{FILENAME}.tmp"
    tokenizer.save(str(tmp))
    tmp.replace(out / FILENAME)
    print(f"tokenizer: {kind}, {tokenizer.get_vocab_size():,} tokens -> {out / FILENAME}", file=sys.stderr)
    return out


def run(args: argparse.Namespace) -> int:
    train_tokenizer_on(args.data, args.kind, args.vocab_size, args.out, args.max_docs, overwrite=args.overwrite)
    return 0
