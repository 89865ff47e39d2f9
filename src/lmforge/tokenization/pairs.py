"""Pair shards: a prepared parallel dataset (data/pairs.py) as token ids, for sequence-to-sequence training.

`DATA/pair-tokens/<name>/` holds, per split, `<split>.src.bin` and `<split>.tgt.bin` (every sentence's ids
end to end, uint16 or uint32) and `<split>.offsets.npy` ((pairs + 1, 2) int64: where each pair's source
and target start); the two tokenizers (`src.tokenizer.json`, `tgt.tokenizer.json`, so the folder is all a
run needs); and `meta.json` ({"format": "lmforge.pair-shards", "version": 1, vocabularies, tokenizer
hashes, and per split the pairs, tokens and target bytes}). No special tokens are stored: a model adds its
own BOS and EOS. One tokenizer for both sides (`--joint`) or one per side."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.artifacts import atomic_write_bytes, check_format, read_json, write_json
from lmforge.data.pairs import SPLITS, is_pairs_dataset, read_pairs
from lmforge.data.shards import dtype_for_vocab
from lmforge.errors import InputError
from lmforge.tokenization.tokenizer import Tokenizer

PAIR_SHARDS_FORMAT, PAIR_SHARDS_VERSION = "pair-shards", 1
BATCH = 2048


def pair_texts(data: Path, side: str):
    """The training split's sentences of one side (src, tgt) or of both (joint), for a tokenizer."""
    if side not in ("src", "tgt", "joint"):
        raise InputError(f"--side {side!r}: src, tgt or joint.")
    for src, tgt in read_pairs(data, "train"):
        if side in ("src", "joint"):
            yield src
        if side in ("tgt", "joint"):
            yield tgt


def default_name(src: Tokenizer, tgt: Tokenizer) -> str:
    return src.name if src.sha256 == tgt.sha256 else f"{src.name}+{tgt.name}"


def _encode_split(data: Path, split: str, src: Tokenizer, tgt: Tokenizer, out: Path) -> dict:
    dtypes = dtype_for_vocab(src.vocab_size), dtype_for_vocab(tgt.vocab_size)
    offsets, position, tgt_bytes = [(0, 0)], [0, 0], 0
    pairs = list(read_pairs(data, split))
    with open(out / f"{split}.src.bin", "wb") as src_file, open(out / f"{split}.tgt.bin", "wb") as tgt_file:
        for first in range(0, len(pairs), BATCH):
            chunk = pairs[first:first + BATCH]
            for ids_src, ids_tgt, (_, text) in zip(src.encode_batch([p[0] for p in chunk]),
                                                    tgt.encode_batch([p[1] for p in chunk]), chunk):
                np.asarray(ids_src, dtype=dtypes[0]).tofile(src_file)
                np.asarray(ids_tgt, dtype=dtypes[1]).tofile(tgt_file)
                position = [position[0] + len(ids_src), position[1] + len(ids_tgt)]
                offsets.append(tuple(position))
                tgt_bytes += len(text.encode("utf-8"))
    np.save(out / f"{split}.offsets.npy", np.asarray(offsets, dtype=np.int64))
    return {"pairs": len(pairs), "src_tokens": position[0], "tgt_tokens": position[1], "tgt_bytes": tgt_bytes}


def tokenize_pairs(data: Path, src: Tokenizer, tgt: Tokenizer | None = None, out: Path | None = None,
                   overwrite: bool = False) -> Path:
    """Pair shards of the parallel dataset `data` (one tokenizer for both sides when `tgt` is None); the
    folder. Shards already made with the same tokenizers are reused."""
    data, tgt = Path(data), tgt or src
    if not is_pairs_dataset(data):
        raise InputError(f"{data}: not a parallel dataset (no pairs stats.json); prepare it with `lmforge prepare "
                         "SOURCES --pairs --out DIR`.")
    out = Path(out or data / "pair-tokens" / default_name(src, tgt))
    if (out / "meta.json").exists():
        meta = read_json(out / "meta.json", "pair shard metadata")
        if (meta.get("src_tokenizer_sha256"), meta.get("tgt_tokenizer_sha256")) == (src.sha256, tgt.sha256):
            return out
        if not overwrite:
            raise InputError(f"{out}: holds pair shards of other tokenizers; choose another --out or pass --overwrite.")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    splits = {split: _encode_split(data, split, src, tgt, out) for split in SPLITS}
    for side, tokenizer in (("src", src), ("tgt", tgt)):
        atomic_write_bytes(out / f"{side}.tokenizer.json", tokenizer.path.read_bytes())
    write_json(out / "meta.json", {"format": f"lmforge.{PAIR_SHARDS_FORMAT}", "version": PAIR_SHARDS_VERSION,
                                   "data": str(data.resolve()), "joint": src.sha256 == tgt.sha256,
                                   "src_vocab_size": src.vocab_size, "tgt_vocab_size": tgt.vocab_size,
                                   "src_tokenizer_sha256": src.sha256, "tgt_tokenizer_sha256": tgt.sha256,
                                   "src_dtype": str(np.dtype(dtype_for_vocab(src.vocab_size))),
                                   "tgt_dtype": str(np.dtype(dtype_for_vocab(tgt.vocab_size))), "splits": splits})
    summary = ", ".join(f"{k} {v['pairs']:,} pairs" for k, v in splits.items())
    print(f"tokenize: {summary} in {time.perf_counter() - start:.1f} s -> {out}", file=sys.stderr)
    return out


@dataclass
class PairSplit:
    """One split's pairs: token arrays (memory-mapped) and where each pair starts."""

    src: np.ndarray
    tgt: np.ndarray
    offsets: np.ndarray      # (pairs + 1, 2)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        d = np.diff(self.offsets, axis=0)
        return d[:, 0], d[:, 1]

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        (s0, t0), (s1, t1) = self.offsets[i], self.offsets[i + 1]
        return np.asarray(self.src[s0:s1], dtype=np.int64), np.asarray(self.tgt[t0:t1], dtype=np.int64)


@dataclass
class PairShards:
    directory: Path
    meta: dict

    @property
    def joint(self) -> bool:
        return bool(self.meta.get("joint"))

    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        src, tgt = Tokenizer(self.directory / "src.tokenizer.json"), Tokenizer(self.directory / "tgt.tokenizer.json")
        if (src.sha256, tgt.sha256) != (self.meta["src_tokenizer_sha256"], self.meta["tgt_tokenizer_sha256"]):
            raise InputError(f"{self.directory}: its tokenizer files are not the ones its shards were made with; "
                             "tokenize the pairs again (lmforge tokenize DATA --tokenizer TOK --overwrite).")
        return src, tgt

    def has(self, split: str) -> bool:
        return self.meta["splits"].get(split, {}).get("pairs", 0) > 0

    def split(self, name: str) -> PairSplit:
        def memmap(path: Path, dtype: str) -> np.ndarray:
            return np.memmap(path, dtype=dtype, mode="r") if path.stat().st_size else np.zeros(0, dtype=dtype)

        d = self.directory
        return PairSplit(memmap(d / f"{name}.src.bin", self.meta["src_dtype"]),
                         memmap(d / f"{name}.tgt.bin", self.meta["tgt_dtype"]),
                         np.load(d / f"{name}.offsets.npy"))


def is_pair_shards(directory: Path) -> bool:
    path = Path(directory) / "meta.json"
    return path.exists() and read_json(path).get("format") == f"lmforge.{PAIR_SHARDS_FORMAT}"


def read_pair_shards(directory: Path) -> PairShards:
    directory = Path(directory)
    meta = read_json(directory / "meta.json", "pair shard metadata")
    check_format(meta, directory / "meta.json", PAIR_SHARDS_FORMAT, PAIR_SHARDS_VERSION)
    return PairShards(directory, meta)
