"""GloVe (Pennington et al. 2014): distance-weighted co-occurrence counts, then weighted least squares
    J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,  f(x) = min(1, (x / x_max)^alpha)
trained by AdaGrad over the shuffled non-zero entries, as the paper's C tool does (x_max 100, alpha 0.75,
learning rate 0.05, symmetric window of 10 with weight 1/distance, gradient components clipped at 100);
the vectors are W + W~.

Counting is streamed and bounded: pairs of a block of sentences are summed into a sorted table, and
tables are merged in memory until they would pass `memory_bytes`, then spilled to a sorted run on disk.
Runs are merged key range by key range, each range read through memory maps, so the peak depends on
the setting, not on the corpus. Training reads the merged table (12 bytes per non-zero entry).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from lmforge.embeddings.corpus import EncodedCorpus

ENTRY_BYTES = 16            # uint64 key + float64 value while counting
PAIR_BYTES = 64             # transient bytes per generated pair in a block (keys, values, sort, inverse)
MIN_BLOCK_WORDS = 10_000


@dataclass
class GloVeConfig:
    dim: int = 100
    window: int = 10
    epochs: int = 25
    x_max: float = 100.0
    alpha: float = 0.75
    eta: float = 0.05
    grad_clip: float = 100.0
    seed: int = 1


@dataclass
class Cooccurrence:
    rows: np.ndarray     # uint32
    cols: np.ndarray     # uint32
    values: np.ndarray   # float32
    spilled_runs: int
    peak_table_bytes: int


def _sum_by_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(keys) == 0:
        return keys, values
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(values, starts)


def _block_pairs(ids: np.ndarray, sentence: np.ndarray, window: int, V: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every pair at distance 1..window inside a sentence, weighted 1/distance."""
    keys, values = [], []
    for d in range(1, window + 1):
        same = sentence[d:] == sentence[:-d]
        left, right = ids[:-d][same].astype(np.uint64), ids[d:][same].astype(np.uint64)
        weight = np.full(len(left), 1.0 / d)
        keys += [left * np.uint64(V) + right, right * np.uint64(V) + left]
        values += [weight, weight]
    return np.concatenate(keys), np.concatenate(values)


class _Runs:
    """Sorted (key, value) tables: in memory up to the budget, then spilled to .npy runs in `folder`."""

    def __init__(self, folder: Path, budget: int):
        self.folder, self.budget = folder, budget
        self.memory: list[tuple[np.ndarray, np.ndarray]] = []
        self.spilled: list[tuple[Path, Path]] = []
        self.peak = 0

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.memory.append((keys, values))
        held = sum(len(k) for k, _ in self.memory) * ENTRY_BYTES
        self.peak = max(self.peak, held)
        if held > self.budget // 2:
            merged = _sum_by_key(np.concatenate([k for k, _ in self.memory]),
                                 np.concatenate([v for _, v in self.memory]))
            self.memory = [merged]
            if len(merged[0]) * ENTRY_BYTES > self.budget // 4:
                self.spill()

    def spill(self) -> None:
        keys, values = self.memory[0] if len(self.memory) == 1 else _sum_by_key(
            np.concatenate([k for k, _ in self.memory]), np.concatenate([v for _, v in self.memory]))
        index = len(self.spilled)
        paths = (self.folder / f"run{index}.keys.npy", self.folder / f"run{index}.values.npy")
        np.save(paths[0], keys)
        np.save(paths[1], values)
        self.spilled.append(paths)
        self.memory = []

    def merged(self, V: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.spilled:
            if not self.memory:
                return np.zeros(0, dtype=np.uint64), np.zeros(0)
            return _sum_by_key(np.concatenate([k for k, _ in self.memory]),
                               np.concatenate([v for _, v in self.memory]))
        if self.memory:
            self.spill()
        runs = [(np.load(k, mmap_mode="r"), np.load(v, mmap_mode="r")) for k, v in self.spilled]
        total = sum(len(k) for k, _ in runs)
        ranges = max(1, math.ceil(total * ENTRY_BYTES * 2 / max(self.budget, 1)))
        edges = np.linspace(0, V * V, ranges + 1).astype(np.uint64)
        out_keys, out_values = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            parts = []
            for keys, values in runs:
                a, b = np.searchsorted(keys, lo), np.searchsorted(keys, hi)
                parts.append((np.asarray(keys[a:b]), np.asarray(values[a:b])))
            keys, values = _sum_by_key(np.concatenate([k for k, _ in parts]), np.concatenate([v for _, v in parts]))
            out_keys.append(keys)
            out_values.append(values.astype(np.float32))
        return np.concatenate(out_keys), np.concatenate(out_values)


def count_cooccurrence(corpus: EncodedCorpus, window: int = 10, memory_bytes: int = 1 << 30,
                       progress=None) -> Cooccurrence:
    V = len(corpus.words)
    block_words = max(MIN_BLOCK_WORDS, memory_bytes // (2 * window * PAIR_BYTES * 2))
    sentence = np.repeat(np.arange(corpus.sentences), np.diff(corpus.offsets))
    with tempfile.TemporaryDirectory(prefix="lmforge-glove-") as folder:
        runs = _Runs(Path(folder), memory_bytes)
        for start in range(0, len(corpus.ids), block_words):
            # a block overlaps the next by `window` words so that pairs across the cut are counted once
            end = min(len(corpus.ids), start + block_words)
            ids, sent = corpus.ids[start:end + window], sentence[start:end + window]
            keys, values = _block_pairs(ids, sent, window, V)
            if end < len(corpus.ids):   # drop pairs starting inside the overlap (the next block counts them)
                keys, values = _pairs_from_prefix(ids, sent, window, V, end - start)
            runs.add(*_sum_by_key(keys, values))
            if progress is not None:
                progress(end - start)
        keys, values = runs.merged(V)
        spilled, peak = len(runs.spilled), runs.peak
    return Cooccurrence((keys // np.uint64(V)).astype(np.uint32), (keys % np.uint64(V)).astype(np.uint32),
                        values.astype(np.float32), spilled, peak)


def _pairs_from_prefix(ids, sentence, window: int, V: int, first: int):
    """Pairs whose left word lies in ids[:first] (its right partner may lie in the overlap)."""
    keys, values = [], []
    for d in range(1, window + 1):
        n = min(first, len(ids) - d)
        same = sentence[d:d + n] == sentence[:n]
        left, right = ids[:n][same].astype(np.uint64), ids[d:d + n][same].astype(np.uint64)
        weight = np.full(len(left), 1.0 / d)
        keys += [left * np.uint64(V) + right, right * np.uint64(V) + left]
        values += [weight, weight]
    return np.concatenate(keys), np.concatenate(values)


@njit(parallel=True, fastmath=True, cache=True)
def _glove_epoch(rows, cols, values, order, W, Wc, b, bc, gW, gWc, gb, gbc, x_max, alpha, eta, clip, workers):
    """AdaGrad over the entries in `order`, split among threads (lock-free, as glove.c); returns the cost."""
    n = len(order)
    dim = W.shape[1]
    costs = np.zeros(workers)
    for w in prange(workers):
        cost = 0.0
        for e in range(w * n // workers, (w + 1) * n // workers):
            k = order[e]
            i, j, x = rows[k], cols[k], values[k]
            diff = np.float32(0.0)
            for d in range(dim):
                diff += W[i, d] * Wc[j, d]
            diff += b[i] + bc[j] - np.float32(math.log(x))
            fdiff = diff if x > x_max else np.float32((x / x_max) ** alpha) * diff
            cost += 0.5 * fdiff * diff
            fdiff *= eta
            for d in range(dim):
                t1 = min(max(fdiff * Wc[j, d], -clip), clip)
                t2 = min(max(fdiff * W[i, d], -clip), clip)
                W[i, d] -= t1 / math.sqrt(gW[i, d])
                Wc[j, d] -= t2 / math.sqrt(gWc[j, d])
                gW[i, d] += t1 * t1
                gWc[j, d] += t2 * t2
            b[i] -= fdiff / math.sqrt(gb[i])
            bc[j] -= fdiff / math.sqrt(gbc[j])
            gb[i] += fdiff * fdiff
            gbc[j] += fdiff * fdiff
        costs[w] = cost
    return costs.sum()


def train_glove(corpus: EncodedCorpus, cooc: Cooccurrence, config: GloVeConfig, workers: int = 1,
                progress=None) -> dict:
    rng = np.random.default_rng(config.seed)
    V, dim = len(corpus.words), config.dim
    W, Wc = [((rng.random((V, dim), dtype=np.float32) - 0.5) / dim) for _ in range(2)]
    b, bc = [((rng.random(V, dtype=np.float32) - 0.5) / dim) for _ in range(2)]
    gW, gWc = np.ones((V, dim), dtype=np.float32), np.ones((V, dim), dtype=np.float32)
    gb, gbc = np.ones(V, dtype=np.float32), np.ones(V, dtype=np.float32)
    numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
    costs = []
    args = (np.float32(config.x_max), np.float32(config.alpha), np.float32(config.eta), np.float32(config.grad_clip))
    _glove_epoch(cooc.rows, cooc.cols, cooc.values, np.zeros(0, dtype=np.int64), W, Wc, b, bc, gW, gWc, gb, gbc,
                 *args, 1)   # compile (or load from numba's cache) before the clock starts
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = rng.permutation(len(cooc.values)).astype(np.int64)
        cost = _glove_epoch(cooc.rows, cooc.cols, cooc.values, order, W, Wc, b, bc, gW, gWc, gb, gbc, *args, workers)
        costs.append(cost / max(len(cooc.values), 1))
        if progress is not None:
            progress(epoch + 1, costs[-1])
    return {"vectors": (W + Wc).astype(np.float32), "costs": costs, "seconds": time.perf_counter() - start}
