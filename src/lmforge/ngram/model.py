"""Querying an n-gram model: backoff lookups over whole token streams at once, next-word distributions.

p(w | c) under the ARPA/backoff reading: the longest stored n-gram (c_suffix, w) gives log10 p, plus the
log10 backoffs of every longer context suffix that is stored. One binary search per order and position,
vectorised over all positions, so a corpus is scored in a few NumPy passes, not a Python loop per word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmforge.ngram.counting import BOS_ID, EOS_ID, UNK_ID
from lmforge.ngram.tables import NgramTables


@dataclass
class Scored:
    """log10 p of every predicted token (each word and each </s>) and where the n-gram match ended."""

    logp: np.ndarray          # float64 log10 probabilities
    matched: np.ndarray       # length of the longest stored n-gram used
    oov: np.ndarray           # the token was not in the vocabulary (<unk>)

    def summary(self) -> dict:
        """Perplexity with and without OOV tokens, as KenLM's `query` reports them."""
        n, oov = len(self.logp), int(self.oov.sum())
        total = float(self.logp.sum())
        known = float(self.logp[~self.oov].sum())
        return {"predicted_tokens": n, "oov_tokens": oov, "log10_prob": total,
                "perplexity": float(10 ** (-total / n)) if n else float("nan"),
                "perplexity_excluding_oov": float(10 ** (-known / (n - oov))) if n > oov else float("nan")}


class NgramModel:
    def __init__(self, tables: NgramTables):
        self.tables = tables
        self.index = {word: i for i, word in enumerate(tables.vocab)}

    @property
    def order(self) -> int:
        return self.tables.order

    def ids(self, words: list[str]) -> np.ndarray:
        get = self.index.get
        return np.fromiter((get(w, UNK_ID) for w in words), dtype=np.int64, count=len(words))

    def stream(self, sentences) -> tuple[np.ndarray, np.ndarray]:
        """Sentences of words -> one id stream `<s> w.. </s> <s> ...` and a sentence number per position."""
        parts, numbers = [], []
        for number, words in enumerate(sentences):
            ids = self.ids(words)
            parts.append(np.concatenate([[BOS_ID], ids, [EOS_ID]]))
            numbers.append(np.full(len(ids) + 2, number))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(parts).astype(np.int64), np.concatenate(numbers)

    def score_stream(self, tokens: np.ndarray, sentence: np.ndarray) -> Scored:
        """Score every position that is not a <s> given the tokens before it in its sentence."""
        t = self.tables
        N = t.order
        same = np.zeros(len(tokens), dtype=bool)
        same[1:] = sentence[1:] == sentence[:-1]
        # ids[k-1][i]: row of the order-k n-gram ending at position i (-1 when absent or crossing a sentence)
        ids = [tokens.copy()]
        for k in range(2, N + 1):
            prev = np.full(len(tokens), -1, dtype=np.int64)
            prev[1:] = ids[-1][:-1]
            prev[~same] = -1
            ids.append(t.find(k, prev, tokens))
        targets = np.flatnonzero(tokens != BOS_ID)
        logp = np.zeros(len(targets))
        matched = np.zeros(len(targets), dtype=np.int64)
        for k in range(N, 0, -1):   # longest match first
            row = ids[k - 1][targets]
            fresh = (matched == 0) & (row >= 0)
            logp[fresh] = t.logp[k - 1][row[fresh]]
            matched[fresh] = k
        for k in range(1, N):       # backoffs of stored contexts longer than the match
            context = ids[k - 1][targets - 1]
            use = (context >= 0) & (matched <= k)
            logp[use] += t.backoff[k - 1][context[use]]
        return Scored(logp, matched, tokens[targets] == UNK_ID)

    def score_sentences(self, sentences) -> Scored:
        return self.score_stream(*self.stream(sentences))

    def next_distribution(self, context: list[int]) -> np.ndarray:
        """p(w | context) for every word id (sums to 1; <s> gets 0)."""
        t = self.tables
        context = list(context)[-(t.order - 1):] if t.order > 1 else []
        prob = 10.0 ** t.logp[0].astype(np.float64)
        prob[BOS_ID] = 0.0
        for k in range(1, len(context) + 1):   # contexts of growing length, each overriding the shorter
            row = t.ids_of(np.asarray([context[-k:]], dtype=np.int64))[0]
            if row < 0:
                break
            prob = prob * 10.0 ** float(t.backoff[k - 1][row])
            keys = t.keys[k]
            lo = np.searchsorted(keys, np.uint64(row * t.vocab_size))
            hi = np.searchsorted(keys, np.uint64((row + 1) * t.vocab_size))
            words = (keys[lo:hi].astype(np.int64) % t.vocab_size)
            prob[words] = 10.0 ** t.logp[k][lo:hi].astype(np.float64)
        return prob
