"""word2vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling or hierarchical softmax,
frequent-word subsampling and a linearly decaying learning rate, as in the original C tool and gensim.

The engine is our own numba kernel: the inner loops (dot products and updates over one vector) compile
to SIMD code, and `workers` threads each take a contiguous share of the sentences of a block and update
the shared matrices without locks ("Hogwild", as word2vec.c and gensim do). Python only schedules blocks
and reports progress. Numba compiles the kernels on first use and caches them on disk.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from lmforge.embeddings.corpus import EncodedCorpus

MAX_EXP = 6.0
MAX_SENTENCE = 10_000     # words trained as one sentence, as word2vec.c and gensim
BLOCK_WORDS = 1_000_000   # words per kernel call (progress is reported between calls)


@dataclass
class Word2VecConfig:
    method: str = "skipgram"      # skipgram | cbow
    dim: int = 100
    window: int = 5
    negative: int = 5             # 0 with hs=True: hierarchical softmax only
    hs: bool = False
    sample: float = 1e-3
    alpha: float | None = None    # default 0.025 (skip-gram), 0.05 (CBOW), as word2vec.c (gensim: 0.025 for both)
    min_alpha: float = 1e-4
    epochs: int = 5
    ns_exponent: float = 0.75
    seed: int = 1


@njit(inline="always")
def _rand(rng):
    """word2vec.c's linear congruential generator; `rng` is the calling thread's own 1-element array
    (a shared array of per-thread states would put them on one cache line, which serialises threads)."""
    rng[0] = (rng[0] * np.uint64(25214903917) + np.uint64(11)) & np.uint64(0xFFFFFFFFFFFF)
    return rng[0]


@njit(inline="always")
def _uniform(rng):
    return (_rand(rng) >> np.uint64(16)) / 4294967296.0


@njit(fastmath=True, inline="always")
def _update(l1, out, row, label, alpha, neu1e):
    """One logistic prediction with output vector out[row]: float32 throughout, so the loops vectorise.
    Rows are indexed, never sliced: a slice is a view whose reference count both threads would bump."""
    f = np.float32(0.0)
    for k in range(l1.shape[0]):
        f += l1[k] * out[row, k]
    if f > MAX_EXP:
        g = np.float32((label - 1.0) * alpha)
    elif f < -MAX_EXP:
        g = np.float32(label * alpha)
    else:
        g = np.float32((label - 1.0 / (1.0 + math.exp(-f))) * alpha)
    for k in range(l1.shape[0]):
        neu1e[k] += g * out[row, k]
        out[row, k] += g * l1[k]


@njit(fastmath=True, inline="always")
def _train_pair(l1, syn1neg, cum, negative, syn1, points, codes, codelen, word, alpha, neu1e, rng):
    """One prediction of `word` from the input vector l1; the input's gradient accumulates in neu1e."""
    if negative > 0:
        _update(l1, syn1neg, word, 1.0, alpha, neu1e)
        for _ in range(negative):
            target = np.searchsorted(cum, _uniform(rng))
            if target != word:
                _update(l1, syn1neg, target, 0.0, alpha, neu1e)
    for j in range(codelen[word]):   # hierarchical softmax (codelen is all 0 without it)
        _update(l1, syn1, points[word, j], 1.0 - codes[word, j], alpha, neu1e)


@njit(fastmath=True, inline="always")
def _train_piece(kept, n, syn0, syn1neg, syn1, cum, points, codes, codelen, sg, window, negative, alpha, neu1,
                 neu1e, rng):
    """One sentence (after subsampling: kept[:n]), every position with a randomly reduced window."""
    dim = syn0.shape[1]
    for pos in range(n):
        reduced = int(_rand(rng) % np.uint64(window))
        lo, hi = max(0, pos - window + reduced), min(n, pos + window + 1 - reduced)
        if sg:   # each context word predicts the centre word
            for c in range(lo, hi):
                if c == pos:
                    continue
                source = kept[c]
                for k in range(dim):
                    neu1[k] = syn0[source, k]
                    neu1e[k] = 0.0
                _train_pair(neu1, syn1neg, cum, negative, syn1, points, codes, codelen, kept[pos], alpha, neu1e, rng)
                for k in range(dim):
                    syn0[source, k] += neu1e[k]
            continue
        count = hi - lo - 1   # CBOW: the mean of the context predicts the centre word
        if count <= 0:
            continue
        for k in range(dim):
            neu1[k] = 0.0
            neu1e[k] = 0.0
        for c in range(lo, hi):
            if c != pos:
                for k in range(dim):
                    neu1[k] += syn0[kept[c], k]
        for k in range(dim):
            neu1[k] /= count
        _train_pair(neu1, syn1neg, cum, negative, syn1, points, codes, codelen, kept[pos], alpha, neu1e, rng)
        for c in range(lo, hi):   # each context word gets the whole error (gensim's cbow_mean=1 and word2vec.c)
            if c != pos:
                for k in range(dim):
                    syn0[kept[c], k] += neu1e[k]


@njit(parallel=True, fastmath=True, cache=True)
def _train_block(ids, offsets, bounds, syn0, syn1neg, syn1, cum, keep_prob, points, codes, codelen, sg, window,
                 negative, alpha0, min_alpha, done_before, total, state):
    """Train on sentences bounds[w]..bounds[w+1] in thread w; returns the words each thread read."""
    workers = len(bounds) - 1
    trained = np.zeros(workers, dtype=np.int64)
    dim = syn0.shape[1]
    for w in prange(workers):
        neu1 = np.empty(dim, dtype=np.float32)
        neu1e = np.empty(dim, dtype=np.float32)
        kept = np.empty(MAX_SENTENCE, dtype=np.int32)
        rng = np.empty(1, dtype=np.uint64)
        rng[0] = state[w]
        seen = 0
        for s in range(bounds[w], bounds[w + 1]):
            for start in range(offsets[s], offsets[s + 1], MAX_SENTENCE):   # long lines in 10k-word pieces
                end = min(offsets[s + 1], start + MAX_SENTENCE)
                n = 0
                for i in range(start, end):
                    word = ids[i]
                    if keep_prob[word] >= 1.0 or keep_prob[word] >= _uniform(rng):
                        kept[n] = word
                        n += 1
                seen += end - start
                progress = (done_before + seen * workers) / total
                alpha = max(min_alpha, alpha0 - (alpha0 - min_alpha) * progress)
                _train_piece(kept, n, syn0, syn1neg, syn1, cum, points, codes, codelen, sg, window, negative, alpha,
                             neu1, neu1e, rng)
        trained[w] = seen
        state[w] = rng[0]
    return trained


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Subsampling of frequent words (gensim's formula): keep a word with probability
    (sqrt(c / t) + 1) * t / c, t = sample * total words."""
    if sample <= 0:
        return np.ones(len(counts), dtype=np.float64)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)


def huffman(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes and inner-node paths of the Huffman tree over the vocabulary (frequent words get short codes)."""
    V = len(counts)
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * V, dtype=np.int64)
    binary = np.zeros(2 * V, dtype=np.int8)
    next_node = V
    while len(heap) > 1:
        c1, a = heapq.heappop(heap)
        c2, b = heapq.heappop(heap)
        parent[a], parent[b], binary[b] = next_node, next_node, 1
        heapq.heappush(heap, (c1 + c2, next_node))
        next_node += 1
    root = next_node - 1
    paths = []
    for word in range(V):
        code, points, node = [], [], word
        while node != root:
            code.append(binary[node])
            node = parent[node]
            points.append(node - V)
        paths.append((code[::-1], points[::-1]))
    depth = max((len(c) for c, _ in paths), default=0)
    codes = np.zeros((V, max(depth, 1)), dtype=np.int8)
    points = np.zeros((V, max(depth, 1)), dtype=np.int32)
    codelen = np.zeros(V, dtype=np.int32)
    for word, (code, point) in enumerate(paths):
        codes[word, :len(code)], points[word, :len(point)], codelen[word] = code, point, len(code)
    return codes, points, codelen


def train_word2vec(corpus: EncodedCorpus, config: Word2VecConfig, workers: int = 1, progress=None) -> dict:
    """Vectors (V, dim) float32 and training statistics."""
    rng = np.random.default_rng(config.seed)
    V, dim = len(corpus.words), config.dim
    syn0 = ((rng.random((V, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    syn1neg = np.zeros((V if config.negative > 0 else 1, dim), dtype=np.float32)
    if config.hs:
        codes, points, codelen = huffman(corpus.counts)
        syn1 = np.zeros((max(V - 1, 1), dim), dtype=np.float32)
    else:
        codes, points = np.zeros((1, 1), dtype=np.int8), np.zeros((1, 1), dtype=np.int32)
        codelen, syn1 = np.zeros(V, dtype=np.int32), np.zeros((1, dim), dtype=np.float32)
    weights = corpus.counts.astype(np.float64) ** config.ns_exponent
    cum = np.cumsum(weights) / weights.sum()
    keep = keep_probabilities(corpus.counts, config.sample)
    sg = config.method == "skipgram"
    alpha = config.alpha if config.alpha is not None else (0.025 if sg else 0.05)
    total = float(len(corpus.ids)) * config.epochs
    numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
    state = (np.arange(workers, dtype=np.uint64) * np.uint64(7919) + np.uint64(config.seed))
    done = 0
    # compile (or load from numba's cache) on an empty block first, so words/s measure training alone
    compile_start = time.perf_counter()
    _train_block(corpus.ids, corpus.offsets, np.zeros(2, dtype=np.int64), syn0, syn1neg, syn1, cum, keep, points,
                 codes, codelen, sg, config.window, config.negative, alpha, config.min_alpha, 0.0, total,
                 state[:1].copy())
    compile_seconds = time.perf_counter() - compile_start
    start = time.perf_counter()
    blocks = _blocks(corpus.offsets, BLOCK_WORDS)
    for _epoch in range(config.epochs):
        for first, last in blocks:
            bounds = _split(corpus.offsets, first, last, workers)
            trained = _train_block(corpus.ids, corpus.offsets, bounds, syn0, syn1neg, syn1, cum, keep, points, codes,
                                   codelen, sg, config.window, config.negative, alpha, config.min_alpha, float(done),
                                   total, state)
            done += int(trained.sum())
            if progress is not None:
                progress(int(trained.sum()))
    seconds = time.perf_counter() - start
    return {"vectors": syn0, "seconds": seconds, "words_per_s": done / max(seconds, 1e-9), "trained_words": done,
            "compile_seconds": compile_seconds}


def _blocks(offsets: np.ndarray, words: int) -> list[tuple[int, int]]:
    """Sentence ranges of about `words` words each."""
    cuts = np.searchsorted(offsets, np.arange(words, offsets[-1], words))
    edges = np.unique(np.concatenate([[0], cuts, [len(offsets) - 1]]))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _split(offsets: np.ndarray, first: int, last: int, workers: int) -> np.ndarray:
    """Sentence bounds giving each thread about the same number of words."""
    targets = np.linspace(offsets[first], offsets[last], workers + 1)
    bounds = np.searchsorted(offsets[first:last + 1], targets) + first
    bounds[0], bounds[-1] = first, last
    return np.maximum.accumulate(bounds).astype(np.int64)
