"""The tokenizer and tokenize stages on a prepared dataset: a tokenizer trained on its train split, and its
clean documents as EOS-separated token shards with meta.json."""

from __future__ import annotations

import shutil
import sys
import time
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from lmforge.data.readers import iter_clean_texts
from lmforge.data.shards import ShardWriter, dtype_for_vocab, write_meta
from lmforge.errors import InputError
from lmforge.tokenization.tokenizer import FILENAME, Tokenizer
from lmforge.tokenization.training import train_tokenizer

BATCH_DOCS = 512
SPLITS = ("train", "val", "test")  # test is empty unless prepare had --test-source


def clean_dir(data: Path) -> Path:
    """The clean/ folder of a prepared dataset (or the folder itself if it holds the .jsonl.gz files)."""
    data = Path(data)
    if not data.exists():
        raise InputError(f"{data}: no such directory; run `lmforge prepare` first.")
    folder = data / "clean" if (data / "clean").is_dir() else data
    if not any(folder.glob("train-*.jsonl.gz")):
        raise InputError(f"{data}: no prepared documents (clean/train-*.jsonl.gz); run `lmforge prepare` on it first.")
    return folder


def tokenize_corpus(data: Path, tokenizer: Tokenizer, out: Path) -> dict:
    """Encode each split in batches; every document is followed by EOS. Memory is one batch."""
    source = clean_dir(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = dtype_for_vocab(tokenizer.vocab_size)
    splits, started = {}, time.perf_counter()
    for split in SPLITS:
        writer = ShardWriter(out, split, dtype)
        bar = tqdm(desc=f"tokenize {split}", unit="B", unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        try:
            texts = iter_clean_texts(source, split)
            while batch := list(islice(texts, BATCH_DOCS)):
                ids = tokenizer.encode_batch(batch)
                for doc_ids in ids:
                    doc_ids.append(tokenizer.eos_id)
                size = sum(len(t.encode("utf-8")) for t in batch)
                writer.write(ids, size)
                bar.update(size)
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
        writer.close()
        splits[split] = {"tokens": writer.tokens, "bytes": writer.bytes, "documents": writer.docs}
    shutil.copyfile(tokenizer.path, out / FILENAME)
    write_meta(out, vocab_size=tokenizer.vocab_size, tokenizer_sha256=tokenizer.sha256,
               tokenizer_name=tokenizer.name, splits=splits, source=str(source))
    seconds = time.perf_counter() - started
    total_bytes = sum(s["bytes"] for s in splits.values())
    return {"out": str(out), "splits": splits, "seconds": seconds, "mb_per_s": total_bytes / 1e6 / max(seconds, 1e-9),
            "dtype": dtype.name, "vocab_size": tokenizer.vocab_size}


def _limited_bytes(texts, max_bytes: int):
    seen = 0
    for text in texts:
        yield text
        seen += len(text)
        if seen >= max_bytes:
            return


def _check_out(out: Path, vocab_size: int, overwrite: bool) -> None:
    if (Path(out) / FILENAME).exists() and not overwrite:
        raise InputError(f"{Path(out) / FILENAME}: a tokenizer is already there; shards and runs made with it would "
                         "stop matching if it were replaced. Choose another --out, or pass --overwrite.")
    if vocab_size <= 0:
        raise InputError(f"--vocab-size must be positive, got {vocab_size}.")


def train_tokenizer_on(data: Path, kind: str, vocab_size: int, out: Path, max_docs: int | None = None,
                       max_chars: int = 500_000_000, overwrite: bool = False) -> Path:
    """Train on the train split of `data` and write `out/tokenizer.json` (refusing to replace one)."""
    _check_out(out, vocab_size, overwrite)
    folder = clean_dir(data)
    texts = _limited_bytes(islice(iter_clean_texts(folder, "train"), max_docs), max_chars)
    return _save(train_tokenizer(kind, texts, vocab_size, source=str(folder)), kind, out)


def train_pair_tokenizer(data: Path, side: str, kind: str, vocab_size: int, out: Path, max_docs: int | None = None,
                         overwrite: bool = False) -> Path:
    """Train on the train pairs of a parallel dataset: both sides (`joint`, one vocabulary for source and
    target) or one side (`src`, `tgt`); write `out/tokenizer.json`."""
    from lmforge.tokenization.pairs import pair_texts

    _check_out(out, vocab_size, overwrite)
    texts = islice(pair_texts(data, side), None if max_docs is None else max_docs * (2 if side == "joint" else 1))
    return _save(train_tokenizer(kind, texts, vocab_size, source=f"{data} ({side})"), kind, out)


def _save(tokenizer, kind: str, out: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{FILENAME}.tmp"
    tokenizer.save(str(tmp))
    tmp.replace(out / FILENAME)
    print(f"tokenizer: {kind}, {tokenizer.get_vocab_size():,} tokens -> {out / FILENAME}", file=sys.stderr)
    return out


def tokenize_dataset(data: Path, tokenizer_dir: Path, out: Path | None, overwrite: bool = False) -> dict:
    """Shards of `data` with the tokenizer in `tokenizer_dir` (default out: DATA/tokens/<tokenizer name>)."""
    tokenizer = Tokenizer(tokenizer_dir)
    out = out or Path(data) / "tokens" / tokenizer.name
    if (Path(out) / "meta.json").exists() and not overwrite:
        raise InputError(f"{out}: already holds token shards; runs trained on them would stop matching if they "
                         "were replaced. Choose another --out, or pass --overwrite.")
    summary = tokenize_corpus(data, tokenizer, out)
    splits = ", ".join(f"{k} {v['tokens']:,} tokens" for k, v in summary["splits"].items())
    print(f"tokenize: {splits} ({summary['dtype']}) at {summary['mb_per_s']:.1f} MB/s -> {out}", file=sys.stderr)
    return summary
