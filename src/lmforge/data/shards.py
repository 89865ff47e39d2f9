"""Token shards: flat uint16/uint32 arrays on disk (`{split}.bin`) described by `meta.json`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.artifacts import check_format, read_json, write_json
from lmforge.errors import InputError

SHARDS_FORMAT_VERSION = 1


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size < 2**16 else np.dtype(np.uint32)


class ShardWriter:
    """Appends token arrays to `<dir>/<split>.bin.tmp`; `close()` renames it into place."""

    def __init__(self, directory: Path, split: str, dtype: np.dtype):
        self.final = Path(directory) / f"{split}.bin"
        self.tmp = self.final.with_name(f".{split}.bin.tmp")
        self.dtype = dtype
        self.tokens = 0
        self.bytes = 0
        self.docs = 0
        self._handle = open(self.tmp, "wb")

    def write(self, token_lists: Iterable[list[int]], text_bytes: int) -> None:
        for ids in token_lists:
            array = np.asarray(ids, dtype=self.dtype)
            array.tofile(self._handle)
            self.tokens += len(array)
            self.docs += 1
        self.bytes += text_bytes

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        self._handle.close()
        self.tmp.unlink(missing_ok=True)


@dataclass
class ShardMeta:
    """What `meta.json` of a shard directory says."""

    directory: Path
    dtype: np.dtype
    vocab_size: int
    tokenizer_sha256: str
    tokenizer_name: str
    splits: dict

    def tokens(self, split: str) -> np.memmap:
        path = self.directory / f"{split}.bin"
        if split not in self.splits or not path.exists():
            raise InputError(f"{self.directory}: no {split!r} split (have {sorted(self.splits)}); "
                             "re-run `lmforge tokenize` on a corpus with that split.")
        if self.splits[split].get("tokens", 0) == 0:
            fix = ("prepare again with --test-source FILES" if split == "test" else
                   "prepare again with a larger --val-fraction (or --val-source)")
            raise InputError(f"{path}: the {split!r} split is empty; {fix}, or evaluate another --split.")
        return np.memmap(path, dtype=self.dtype, mode="r")

    def bytes_per_token(self, split: str) -> float:
        info = self.splits[split]
        return info["bytes"] / max(info["tokens"], 1)


def write_meta(directory: Path, *, vocab_size: int, tokenizer_sha256: str, tokenizer_name: str,
               splits: dict, source: str) -> None:
    write_json(Path(directory) / "meta.json", {
        "format": "lmforge.shards", "version": SHARDS_FORMAT_VERSION,
        "dtype": dtype_for_vocab(vocab_size).name, "vocab_size": vocab_size,
        "tokenizer_sha256": tokenizer_sha256, "tokenizer_name": tokenizer_name,
        "source": source, "splits": splits,
    })


def read_meta(directory: Path) -> ShardMeta:
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: no such shard directory; run `lmforge tokenize` first.")
    path = directory / "meta.json"
    if not path.exists():
        raise InputError(f"{path}: missing; {directory} is not a token shard directory "
                         "(expected the output of `lmforge tokenize`).")
    meta = read_json(path, "shard metadata")
    check_format(meta, path, "shards", SHARDS_FORMAT_VERSION)
    return ShardMeta(directory, np.dtype(meta["dtype"]), int(meta["vocab_size"]), meta["tokenizer_sha256"],
                     meta.get("tokenizer_name", ""), meta["splits"])


def check_shards_match(meta: ShardMeta, *, vocab_size: int, tokenizer_sha256: str | None, owner: str) -> None:
    """The one place a tokenizer/model mismatch is caught."""
    if tokenizer_sha256 and meta.tokenizer_sha256 != tokenizer_sha256:
        raise InputError(f"{meta.directory}/meta.json: shards were made with tokenizer {meta.tokenizer_name!r} "
                         f"(sha256 {meta.tokenizer_sha256[:12]}), but {owner} uses sha256 {tokenizer_sha256[:12]}; "
                         "use shards tokenized with the run's tokenizer.json: `lmforge tokenize DATA --tokenizer "
                         "RUN --out NEW_SHARDS` re-creates them with it.")
    if meta.vocab_size > vocab_size:
        raise InputError(f"{meta.directory}/meta.json: vocab_size {meta.vocab_size} does not fit the model's "
                         f"vocab_size {vocab_size} ({owner}); re-tokenize or pass --vocab-size {meta.vocab_size}.")
