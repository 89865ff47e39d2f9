"""The stored form of an n-gram model: per order, sorted trie keys, log10 probabilities and backoffs.

An n-gram (w1..wn) of order n >= 2 has the key `id(w1..w(n-1)) * V + wn`, where id() is the row index of
its prefix in the order n-1 table and V the vocabulary size; order 1 is the whole vocabulary indexed by
word id. Keys sorted ascending are the n-grams in lexicographic order, every prefix of a stored n-gram is
stored (as in KenLM's trie), and a lookup is one binary search per order. Probabilities are the
interpolated ones an ARPA file holds: log10 p(wn | w1..w(n-1)) and log10 backoff(w1..wn).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NO_PROB = -99.0   # log10 probability of <s> as a prediction (it never is one), as ARPA files write it


@dataclass
class NgramTables:
    vocab: list[str]
    keys: list[np.ndarray]        # keys[n-1] for order n (keys[0] = arange(V), order 1)
    logp: list[np.ndarray]        # float32 log10 p per row
    backoff: list[np.ndarray]     # float32 log10 backoff per row (zeros for the highest order)
    meta: dict = field(default_factory=dict)

    @property
    def order(self) -> int:
        return len(self.keys)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def counts(self) -> list[int]:
        return [len(k) for k in self.keys]

    def rows(self, n: int) -> np.ndarray:
        """The (M, n) word-id rows of order n, recovered from the keys (for ARPA output and tests)."""
        V = self.vocab_size
        keys = self.keys[n - 1].astype(np.int64)
        columns = [keys % V]
        prefix = keys // V
        for lower in range(n - 1, 0, -1):
            lower_keys = self.keys[lower - 1].astype(np.int64)[prefix]
            if lower == 1:
                columns.append(lower_keys)
            else:
                columns.append(lower_keys % V)
                prefix = lower_keys // V
        return np.stack(columns[::-1], axis=1) if n > 1 else keys[:, None]

    def find(self, n: int, prefix_ids: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Row index at order n of (prefix row at order n-1, word), or -1 where absent (vectorised)."""
        V = self.vocab_size
        if n == 1:
            return words.astype(np.int64)
        keys = self.keys[n - 1]
        wanted = prefix_ids.astype(np.int64) * V + words
        found = np.where(prefix_ids >= 0, wanted, 0).astype(np.uint64)
        at = np.searchsorted(keys, found)
        at_clipped = np.minimum(at, len(keys) - 1) if len(keys) else at
        hit = (prefix_ids >= 0) & (len(keys) > 0)
        if len(keys):
            hit &= keys[at_clipped] == found
        return np.where(hit, at_clipped, -1)

    def ids_of(self, rows: np.ndarray) -> np.ndarray:
        """Row index at order n = rows.shape[1] of each row of word ids, -1 where absent."""
        ids = rows[:, 0].astype(np.int64)
        for n in range(2, rows.shape[1] + 1):
            ids = self.find(n, ids, rows[:, n - 1].astype(np.int64))
        return ids
