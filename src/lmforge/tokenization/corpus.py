"""The tokenize stage: clean documents -> EOS-separated token shards with meta.json."""

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
