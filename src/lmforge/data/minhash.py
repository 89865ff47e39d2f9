"""MinHash signatures over word 5-gram shingles and LSH banding for near-duplicate detection.

Memory is proportional to the number of documents (one `num_perm` uint32 signature each), not to
their size. Hashes are stable across processes and machines (no Python `hash()`), so shards
computed anywhere can be merged."""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

import numpy as np

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64(0xFFFFFFFF)
_WORDS = re.compile(r"\w+", re.UNICODE)


@dataclass
class MinHashConfig:
    num_perm: int = 112
    """Hash functions per signature (= bands * rows)."""
    bands: int = 14
    """LSH bands; two documents are candidates when all rows of some band agree."""
    ngram: int = 5
    """Words per shingle."""
    threshold: float = 0.8
    """Estimated Jaccard similarity at or above which candidates are duplicates."""
    seed: int = 1

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise ValueError(f"--minhash-bands {self.bands} must divide the number of hashes {self.num_perm}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"--near-dup-threshold must be in (0, 1], got {self.threshold}")


def ngram_keys(codes: np.ndarray, n: int) -> np.ndarray:
    """One uint64 key per run of n consecutive codes: a polynomial combination (wraps mod 2^64)."""
    keys = codes[: len(codes) - n + 1].copy()
    for k in range(1, n):
        keys = keys * np.uint64(1_000_003) + codes[k: len(codes) - n + 1 + k]
    return keys


class MinHasher:
    def __init__(self, config: MinHashConfig):
        self.config = config
        rng = np.random.default_rng(config.seed)
        self.a = rng.integers(1, (1 << 61) - 1, size=config.num_perm, dtype=np.uint64)
        self.b = rng.integers(0, (1 << 61) - 1, size=config.num_perm, dtype=np.uint64)

    def shingle_hashes(self, text: str) -> np.ndarray:
        words = _WORDS.findall(text.lower())
        n = self.config.ngram
        if len(words) < n:
            words = words + [""] * (n - len(words))  # short documents are one shingle
        codes = np.array([zlib.crc32(w.encode("utf-8")) for w in words], dtype=np.uint64)
        return np.unique(ngram_keys(codes, n) & _MAX32)

    def signature(self, text: str) -> np.ndarray:
        """(num_perm,) uint32: min over shingles of (a * x + b) mod p, per hash function."""
        shingles = self.shingle_hashes(text)
        # (a * x) fits in uint64 wrap-around arithmetic; the Mersenne fold keeps it well mixed
        values = (self.a[:, None] * shingles[None, :] + self.b[:, None]) % _MERSENNE
        return (values.min(axis=1) & _MAX32).astype(np.uint32)


def band_keys(signatures: np.ndarray, bands: int) -> np.ndarray:
    """(n_docs, bands) uint64 keys: a stable digest of each band's rows."""
    n, num_perm = signatures.shape
    rows = num_perm // bands
    keys = np.empty((n, bands), dtype=np.uint64)
    for band in range(bands):
        chunk = np.ascontiguousarray(signatures[:, band * rows:(band + 1) * rows])
        keys[:, band] = [int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
                         for row in chunk]
    return keys


def near_duplicate_clusters(signatures: np.ndarray, config: MinHashConfig) -> np.ndarray:
    """For each document, the index of its cluster's representative: the lowest index in the cluster
    (indices follow the global input order, so the choice is deterministic)."""
    n = len(signatures)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        keys = band_keys(signatures, config.bands)
        for band in range(config.bands):
            order = np.argsort(keys[:, band], kind="stable")
            sorted_keys = keys[order, band]
            same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
            for pos in same:
                i, j = int(order[pos]), int(order[pos + 1])
                if np.mean(signatures[i] == signatures[j]) >= config.threshold:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(n)], dtype=np.int64)
