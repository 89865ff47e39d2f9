"""A corpus as word ids: one int32 stream, sentence offsets, and a vocabulary sorted by falling count.

Words under `min_count` are dropped from the stream (word2vec's and GloVe's convention: they are not
replaced by <unk>). Sentences are the lines of the documents, as for the n-gram models.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lmforge.errors import InputError
from lmforge.tokenization.words import WordSplitter


@dataclass
class EncodedCorpus:
    words: list[str]        # id -> word, most frequent first
    counts: np.ndarray      # occurrences per id (int64)
    ids: np.ndarray         # int32 stream of the kept words
    offsets: np.ndarray     # int64 sentence boundaries into ids (len = sentences + 1)
    raw_words: int          # words before the min_count cut

    @property
    def sentences(self) -> int:
        return len(self.offsets) - 1


def encode_corpus(lines: Iterable[str], splitter: WordSplitter, min_count: int = 5, max_vocab: int | None = None,
                  progress=None) -> EncodedCorpus:
    index: dict[str, int] = {}
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    buffer: list[int] = []
    for words in splitter.sentences(lines):
        buffer.extend(index.setdefault(w, len(index)) for w in words)
        lengths.append(len(words))
        if len(buffer) > 1_000_000:
            chunks.append(np.asarray(buffer, dtype=np.int32))
            if progress is not None:
                progress(len(buffer))
            buffer = []
    chunks.append(np.asarray(buffer, dtype=np.int32))
    if progress is not None:
        progress(len(buffer))
    stream = np.concatenate(chunks)
    counts = np.bincount(stream, minlength=len(index)).astype(np.int64)
    words = np.array(list(index), dtype=object)
    order = np.lexsort((words.astype(str), -counts))
    order = order[counts[order] >= min_count]
    if max_vocab is not None:
        order = order[:max_vocab]
    if len(order) == 0:
        raise InputError(f"no word occurs at least --min-count {min_count} times in {len(stream):,} words: the "
                         "vocabulary is empty; lower --min-count or give more text.")
    mapping = np.full(len(index), -1, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    mapped = mapping[stream]
    keep = mapped >= 0
    sentence_of = np.repeat(np.arange(len(lengths)), lengths)
    kept_lengths = np.bincount(sentence_of[keep], minlength=len(lengths))
    offsets = np.concatenate([[0], np.cumsum(kept_lengths)]).astype(np.int64)
    return EncodedCorpus([words[i] for i in order], counts[order], mapped[keep].astype(np.int32), offsets,
                         len(stream))
