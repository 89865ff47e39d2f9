"""Counting n-grams into compact NumPy tables, streamed in chunks and merged.

A sentence w1..wk is counted as KenLM's `lmplz` counts it: padded to <s>^(N-1) w1..wk </s> and cut into
its k+1 windows of the highest order N. The windows that begin with several <s> stand for the shorter
n-grams at the start of a sentence ("<s> <s> a" is the bigram "<s> a"); every lower-order statistic is
derived from this one table by taking suffixes (see estimate.py), so only order N is ever counted.

A table is a lexicographically sorted (M, N) int32 array of distinct n-grams and an int64 count per
row: no Python object per n-gram. Chunks are counted independently (in worker processes with
`workers > 1`), each with its own word ids; the merge maps them onto one vocabulary and sums equal rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from lmforge.tokenization.words import BOS, EOS, SPECIAL_WORDS, UNK, WordSplitter

CHUNK_LINES = 20_000
MERGE_ROWS = 20_000_000   # merge accumulated chunk tables once they hold this many rows


def count_rows(rows: np.ndarray, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows in lexicographic order and their summed counts (1 per row when counts is None)."""
    if len(rows) == 0:
        return rows.reshape(0, rows.shape[1]), np.zeros(0, dtype=np.int64)
    order = np.lexsort(rows.T[::-1])
    rows = rows[order]
    weights = np.ones(len(rows), dtype=np.int64) if counts is None else counts[order]
    starts = np.flatnonzero(np.concatenate([[True], np.any(rows[1:] != rows[:-1], axis=1)]))
    return rows[starts], np.add.reduceat(weights, starts)


def padded_windows(ids: np.ndarray, lengths: np.ndarray, order: int) -> np.ndarray:
    """All order-N windows of the padded sentences: (sum(lengths + 1), N) int32."""
    bos, eos = SPECIAL_WORDS.index(BOS), SPECIAL_WORDS.index(EOS)
    pad = order - 1
    padded_lengths = lengths + pad + 1
    ends = np.cumsum(padded_lengths)
    stream = np.full(int(ends[-1]) if len(ends) else 0, bos, dtype=np.int32)
    starts = ends - padded_lengths
    # word positions inside the padded stream: after each sentence's padding
    word_pos = np.repeat(starts + pad, lengths) + (np.arange(len(ids)) - np.repeat(np.cumsum(lengths) - lengths,
                                                                                     lengths))
    stream[word_pos] = ids
    stream[ends - 1] = eos
    windows = np.lib.stride_tricks.sliding_window_view(stream, order)
    # a window is valid when it starts inside a sentence's first (length + 1) positions
    valid_starts = np.repeat(starts, lengths + 1) + (np.arange(int((lengths + 1).sum()))
                                                     - np.repeat(np.cumsum(lengths + 1) - (lengths + 1), lengths + 1))
    return np.ascontiguousarray(windows[valid_starts])


@dataclass
class ChunkCounts:
    words: list[str]            # local id -> word (ids 0..2 are <unk> <s> </s>)
    word_counts: np.ndarray     # occurrences of each local word
    rows: np.ndarray
    counts: np.ndarray
    sentences: int
    tokens: int


def count_chunk(lines: list[str], splitter: WordSplitter, order: int) -> ChunkCounts:
    index = {word: i for i, word in enumerate(SPECIAL_WORDS)}
    ids: list[int] = []
    lengths: list[int] = []
    for words in splitter.sentences(lines):
        for word in words:
            ids.append(index.setdefault(word, len(index)))
        lengths.append(len(words))
    ids_array = np.asarray(ids, dtype=np.int32)
    lengths_array = np.asarray(lengths, dtype=np.int64)
    rows, counts = count_rows(padded_windows(ids_array, lengths_array, order))
    word_counts = np.bincount(ids_array, minlength=len(index)).astype(np.int64)
    word_counts[SPECIAL_WORDS.index(EOS)] += len(lengths)
    return ChunkCounts(list(index), word_counts, rows, counts, len(lengths), len(ids))


def _chunks(lines: Iterable[str], size: int = CHUNK_LINES) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_WORKER_ARGS: tuple = ()


def _count_in_worker(lines: list[str]) -> ChunkCounts:
    splitter, order = _WORKER_ARGS
    return count_chunk(lines, splitter, order)


@dataclass
class CorpusCounts:
    """The highest-order table over one vocabulary (ids: <unk> <s> </s>, then words by falling count)."""

    vocab: list[str]
    word_counts: np.ndarray
    rows: np.ndarray
    counts: np.ndarray
    sentences: int
    tokens: int
    unk_tokens: int = 0


class CountMerger:
    """Maps chunk tables onto one vocabulary and sums them, merging as it goes to bound memory."""

    def __init__(self, order: int):
        self.order = order
        self.index = {word: i for i, word in enumerate(SPECIAL_WORDS)}
        self.word_counts = np.zeros(len(SPECIAL_WORDS), dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_rows = 0
        self.sentences = self.tokens = 0

    def add(self, chunk: ChunkCounts) -> None:
        mapping = np.fromiter((self.index.setdefault(w, len(self.index)) for w in chunk.words), dtype=np.int32,
                              count=len(chunk.words))
        if len(self.index) > len(self.word_counts):
            self.word_counts = np.concatenate([self.word_counts,
                                               np.zeros(len(self.index) - len(self.word_counts), dtype=np.int64)])
        np.add.at(self.word_counts, mapping, chunk.word_counts)
        self.pending.append((mapping[chunk.rows], chunk.counts))
        self.pending_rows += len(chunk.rows)
        self.sentences += chunk.sentences
        self.tokens += chunk.tokens
        if self.pending_rows > MERGE_ROWS:
            self._merge()

    def _merge(self) -> None:
        if len(self.pending) > 1:
            rows, counts = count_rows(np.concatenate([r for r, _ in self.pending]),
                                      np.concatenate([c for _, c in self.pending]))
            self.pending = [(rows, counts)]
        self.pending_rows = sum(len(r) for r, _ in self.pending)

    def finish(self, min_count: int = 1, closed_vocabulary: list[str] | None = None) -> CorpusCounts:
        """One table; words seen fewer than min_count times become <unk>; ids sorted by falling count.
        A closed vocabulary (a tokenizer's tokens) is kept whole, unseen tokens included: they then get
        the uniform share of the unigram mass instead of being <unk>."""
        for word in closed_vocabulary or ():
            self.index.setdefault(word, len(self.index))
        if len(self.index) > len(self.word_counts):
            self.word_counts = np.concatenate([self.word_counts,
                                               np.zeros(len(self.index) - len(self.word_counts), dtype=np.int64)])
        words = list(self.index)
        counts = self.word_counts.copy()
        fixed = len(SPECIAL_WORDS)
        closed = np.zeros(len(words), dtype=bool)
        if closed_vocabulary:
            closed[[self.index[w] for w in closed_vocabulary]] = True
        keep = np.flatnonzero((counts[fixed:] >= min_count) | closed[fixed:]) + fixed
        keep = keep[np.lexsort((np.array([words[i] for i in keep], dtype=object).astype(str), -counts[keep]))] \
            if len(keep) else keep
        mapping = np.zeros(len(words), dtype=np.int32)   # dropped words -> <unk> (id 0)
        mapping[:fixed] = np.arange(fixed)
        mapping[keep] = np.arange(fixed, fixed + len(keep))
        unk_tokens = int(counts[fixed:].sum() - counts[keep].sum())
        vocab = list(SPECIAL_WORDS) + [words[i] for i in keep]
        word_counts = np.concatenate([[unk_tokens, 0, counts[SPECIAL_WORDS.index(EOS)]], counts[keep]])
        if not self.pending:
            rows = np.zeros((0, self.order), dtype=np.int32)
            return CorpusCounts(vocab, word_counts, rows, np.zeros(0, dtype=np.int64), 0, 0)
        rows, table_counts = count_rows(np.concatenate([mapping[r] for r, _ in self.pending]),
                                        np.concatenate([c for _, c in self.pending]))
        return CorpusCounts(vocab, word_counts, rows, table_counts, self.sentences, self.tokens, unk_tokens)


def count_corpus(lines: Iterable[str], splitter: WordSplitter, order: int, workers: int = 1,
                 min_count: int = 1, progress=None) -> CorpusCounts:
    """Count a corpus's order-N windows, chunk by chunk (in `workers` forked processes when > 1)."""
    merger = CountMerger(order)

    def take(chunk: ChunkCounts) -> None:
        merger.add(chunk)
        if progress is not None:
            progress(chunk.tokens)

    if workers <= 1:
        for chunk in _chunks(lines):
            take(count_chunk(chunk, splitter, order))
    else:
        import multiprocessing

        global _WORKER_ARGS
        _WORKER_ARGS = (splitter, order)
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with context.Pool(workers) as pool:
            for chunk in pool.imap(_count_in_worker, _chunks(lines), chunksize=1):
                take(chunk)
    return merger.finish(min_count, splitter.vocabulary())


def default_workers() -> int:
    """One process on a small machine (a second busy process halves a 2-core laptop); up to 8 beyond."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if cores <= 2 else min(8, cores - 1)


UNK_ID = SPECIAL_WORDS.index(UNK)
BOS_ID = SPECIAL_WORDS.index(BOS)
EOS_ID = SPECIAL_WORDS.index(EOS)
