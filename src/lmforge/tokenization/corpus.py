"""The tokenizer and tokenize stages on a prepared dataset: a tokenizer trained on its train split, and its
clean documents as EOS-separated token shards with meta.json."""

from __future__ import annotations

import shutil
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np
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


def encoded_batches(tokenizer: Tokenizer, texts):
    """(ids of each document followed by EOS, UTF-8 bytes of the batch) per batch of BATCH_DOCS texts."""
    texts = iter(texts)
    while batch := list(islice(texts, BATCH_DOCS)):
        ids = tokenizer.encode_batch(batch)
        for doc_ids in ids:
            doc_ids.append(tokenizer.eos_id)
        yield ids, sum(len(t.encode("utf-8")) for t in batch)


def encode_file(job: tuple[str, str]) -> tuple[list[np.ndarray], int]:
    """A Ray task: the documents of one clean file as token arrays (the shard's dtype), and their bytes."""
    tokenizer_path, path = job
    tokenizer = Tokenizer(Path(tokenizer_path))
    dtype = dtype_for_vocab(tokenizer.vocab_size)
    arrays, size = [], 0
    for ids, batch_bytes in encoded_batches(tokenizer, iter_clean_texts(Path(path).parent, Path(path).name,
                                                                        exact=True)):
        arrays += [np.asarray(doc, dtype=dtype) for doc in ids]
        size += batch_bytes
    return arrays, size


def _split_batches(source: Path, split: str, tokenizer: Tokenizer, executor: str, address: str | None):
    """The split's encoded batches in file order, encoded here or by Ray tasks (one per clean file)."""
    if executor != "ray":
        yield from encoded_batches(tokenizer, iter_clean_texts(source, split))
        return
    from lmforge.data.ray_executor import ray_map

    files = sorted(source.glob(f"{split}-*.jsonl.gz"))
    jobs = [(index, (str(tokenizer.path), str(path))) for index, path in enumerate(files)]
    done, following = {}, 0
    for index, result in ray_map(_indexed_encode, jobs, address):
        done[index] = result
        while following in done:   # written in file order, whatever order the tasks finish in
            yield done.pop(following)
            following += 1


def _indexed_encode(job):
    index, inner = job
    return index, encode_file(inner)


def tokenize_corpus(data: Path, tokenizer: Tokenizer, out: Path, executor: str = "local",
                    ray_address: str | None = None) -> dict:
    """Encode each split in batches; every document is followed by EOS. Memory is one batch (one file per
    Ray task with --executor ray; the shards are the same)."""
    source = clean_dir(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = dtype_for_vocab(tokenizer.vocab_size)
    splits, started = {}, time.perf_counter()
    for split in SPLITS:
        writer = ShardWriter(out, split, dtype)
        bar = tqdm(desc=f"tokenize {split}", unit="B", unit_scale=True, file=sys.stderr, dynamic_ncols=True)
        try:
            for ids, size in _split_batches(source, split, tokenizer, executor, ray_address):
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


def tokenize_dataset(data: Path, tokenizer_dir: Path, out: Path | None, overwrite: bool = False,
                     executor: str = "local", ray_address: str | None = None) -> dict:
    """Shards of `data` with the tokenizer in `tokenizer_dir` (default out: DATA/tokens/<tokenizer name>)."""
    if executor == "ray":
        from lmforge.data.ray_executor import check_ray

        check_ray(ray_address)
    tokenizer = Tokenizer(tokenizer_dir)
    out = out or Path(data) / "tokens" / tokenizer.name
    if (Path(out) / "meta.json").exists() and not overwrite:
        raise InputError(f"{out}: already holds token shards; runs trained on them would stop matching if they "
                         "were replaced. Choose another --out, or pass --overwrite.")
    summary = tokenize_corpus(data, tokenizer, out, executor, ray_address)
    splits = ", ".join(f"{k} {v['tokens']:,} tokens" for k, v in summary["splits"].items())
    print(f"tokenize: {splits} ({summary['dtype']}) at {summary['mb_per_s']:.1f} MB/s -> {out}", file=sys.stderr)
    return summary
