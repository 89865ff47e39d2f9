"""Estimating an interpolated n-gram model from the highest-order counts.

Modified Kneser-Ney (Chen & Goodman 1998; KenLM's `lmplz` defaults):
- the highest order uses raw counts; a lower-order n-gram uses its *adjusted* count, the number of
  distinct words seen to its left, except an n-gram starting with <s>, which nothing can precede and
  which keeps its raw count;
- per order, three discounts from the count-of-counts t1..t4 of those counts:
  Y = t1 / (t1 + 2 t2), D1 = 1 - 2Y t2/t1, D2 = 2 - 3Y t3/t2, D3+ = 3 - 4Y t4/t3;
- u(w | c) = (a(cw) - D(a(cw))) / sum_x a(cx), and the interpolation weight gamma(c) = 1 - sum_w u(w | c)
  (= (D1 N1(c.) + D2 N2(c.) + D3 N3+(c.)) / sum_x a(cx) when nothing is pruned);
- p(w | c) = u(w | c) + gamma(c) p(w | c'), c' = c without its first word; unigrams interpolate with
  the uniform distribution over the vocabulary (so <unk> gets gamma() / |V|).
Witten-Bell and add-k use raw counts at every order and the same recursion (add-k's added mass is spread
by the lower order, which is exactly add-k at order 1). Because gamma is 1 - (kept mass), every context's
distribution sums to 1 also after pruning: the pruned n-grams' mass goes to the backoff.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmforge.errors import InputError
from lmforge.ngram.counting import BOS_ID, CorpusCounts
from lmforge.ngram.tables import NO_PROB, NgramTables

SMOOTHINGS = ("kneser-ney", "witten-bell", "add-k")
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclass
class Order:
    """One order's distinct n-grams (sorted rows), raw counts and Kneser-Ney counts."""

    rows: np.ndarray
    raw: np.ndarray
    kn: np.ndarray


def derive_orders(counts: CorpusCounts) -> list[Order]:
    """Every order's n-grams and counts by taking suffixes of the padded highest-order table."""
    top = Order(counts.rows, counts.counts, counts.counts)
    orders = [top]
    for _ in range(counts.rows.shape[1] - 1):
        parent = orders[0]
        suffix = parent.rows[:, 1:]
        order = np.lexsort(suffix.T[::-1])
        suffix = suffix[order]
        starts = np.flatnonzero(np.concatenate([[True], np.any(suffix[1:] != suffix[:-1], axis=1)])) \
            if len(suffix) else np.zeros(0, dtype=np.int64)
        rows = suffix[starts]
        raw = np.add.reduceat(parent.raw[order], starts) if len(starts) else np.zeros(0, dtype=np.int64)
        types = np.diff(np.append(starts, len(suffix)))
        kn = np.where(rows[:, 0] == BOS_ID, raw, types)
        orders.insert(0, Order(rows, raw, kn))
    # n-grams that begin with two <s> are padding artifacts standing for a shorter n-gram: drop them
    for n, order in enumerate(orders[1:], start=2):
        keep = ~((order.rows[:, 0] == BOS_ID) & (order.rows[:, 1] == BOS_ID))
        orders[n - 1] = Order(order.rows[keep], order.raw[keep], order.kn[keep])
    return orders


def kneser_ney_discounts(values: np.ndarray) -> tuple[float, float, float]:
    """D1, D2, D3+ from count-of-counts. When they cannot be estimated (some t_k = 0, or a discount out of
    (0, k), which happens on tiny corpora) the fixed fallback 0.5, 1, 1.5 is used, as lmplz's
    --discount_fallback does."""
    t = [int((values == k).sum()) for k in (1, 2, 3, 4)]
    if min(t) == 0:
        return FALLBACK_DISCOUNTS
    y = t[0] / (t[0] + 2 * t[1])
    discounts = tuple(float(k - (k + 1) * y * t[k] / t[k - 1]) for k in (1, 2, 3))
    if not all(0 < d < k for d, k in zip(discounts, (1, 2, 3))):
        return FALLBACK_DISCOUNTS
    return discounts


def _discount(values: np.ndarray, d: tuple[float, float, float]) -> np.ndarray:
    return np.select([values == 1, values == 2, values >= 3], list(d), 0.0)


def _keys_and_links(orders: list[Order], V: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Trie keys per order, and for every row the index of its prefix and of its suffix one order down."""
    keys = [np.arange(V, dtype=np.uint64)]
    prefixes, suffixes = [np.zeros(V, dtype=np.int64)], [np.zeros(V, dtype=np.int64)]

    def walk(rows: np.ndarray, first: int) -> np.ndarray:
        ids = rows[:, first].astype(np.int64)
        for col in range(first + 1, rows.shape[1]):
            ids = np.searchsorted(keys[col - first], (ids * V + rows[:, col]).astype(np.uint64)).astype(np.int64)
        return ids

    for n, order in enumerate(orders[1:], start=2):
        prefix = walk(order.rows[:, :-1], 0)
        keys.append((prefix * V + order.rows[:, -1]).astype(np.uint64))
        prefixes.append(prefix)
        suffixes.append(walk(order.rows[:, 1:], 0) if n > 2 else order.rows[:, -1].astype(np.int64))
    return keys, prefixes, suffixes


def _pruned_keep(orders: list[Order], prefixes, suffixes, prune: list[int]) -> list[np.ndarray]:
    """Rows kept per order: count above the order's threshold, or needed as a prefix/suffix of a kept row."""
    keep = [np.ones(len(o.rows), dtype=bool) for o in orders]
    for n in range(len(orders), 1, -1):
        keep[n - 1] &= orders[n - 1].kn > prune[n - 1]
        if n < len(orders):   # needed by a kept higher-order row
            needed = np.zeros(len(orders[n - 1].rows), dtype=bool)
            needed[prefixes[n][keep[n]]] = True
            needed[suffixes[n][keep[n]]] = True
            keep[n - 1] |= needed
    return keep


def estimate(counts: CorpusCounts, smoothing: str = "kneser-ney", prune: list[int] | None = None,
             add_k: float = 1.0) -> NgramTables:
    if smoothing not in SMOOTHINGS:
        raise InputError(f"--smoothing {smoothing}: choose one of {', '.join(SMOOTHINGS)}.")
    N, V = counts.rows.shape[1], len(counts.vocab)
    prune = list(prune or [0] * N)
    if len(prune) != N or prune[0] != 0 or any(p < 0 for p in prune):
        raise InputError(f"--prune {' '.join(map(str, prune))}: give {N} thresholds (one per order), the first 0 "
                         "(unigrams are never pruned), e.g. --prune " + " ".join(["0"] * min(N, 2) + ["1"] * (N - 2)))
    orders = derive_orders(counts)
    keys, prefixes, suffixes = _keys_and_links(orders, V)
    keep = _pruned_keep(orders, prefixes, suffixes, prune)

    # unigrams: the whole vocabulary; <s> is never predicted, <unk> has no count unless the cut-off made one
    values1 = np.zeros(V, dtype=np.int64)
    uni = orders[0]
    values1[uni.rows[:, 0]] = uni.kn if smoothing == "kneser-ney" else uni.raw
    if smoothing != "kneser-ney":
        values1[0] = counts.word_counts[0]   # raw <unk> occurrences (from the cut-off)
    values1[BOS_ID] = 0
    discounts = []
    predictable = V - 1    # every word but <s>
    u1, gamma0 = _unigram(values1, smoothing, add_k, predictable, discounts)
    prob = u1 + gamma0 / predictable
    prob[BOS_ID] = 0.0
    probs = [prob]
    gammas = []
    for n in range(2, N + 1):
        order, prefix = orders[n - 1], prefixes[n - 1]
        values = order.kn if smoothing == "kneser-ney" else order.raw
        contexts = len(keys[n - 2])
        total = np.bincount(prefix, weights=values, minlength=contexts)
        if smoothing == "kneser-ney":
            d = kneser_ney_discounts(values)
            discounts.append(d)
            numerator, denominator = values - _discount(values, d), total
        elif smoothing == "witten-bell":
            numerator = values.astype(np.float64)
            denominator = total + np.bincount(prefix, minlength=contexts)
        else:
            numerator, denominator = values + 0.0, total + add_k * predictable
        u = np.where(keep[n - 1], numerator / np.maximum(denominator[prefix], 1e-300), 0.0)
        has_children = np.bincount(prefix, minlength=contexts) > 0
        gamma = np.where(has_children, 1.0 - np.bincount(prefix, weights=u, minlength=contexts), 1.0)
        gamma = np.maximum(gamma, 1e-12)   # all mass kept (e.g. add-k with tiny k): keep the log finite
        gammas.append(gamma)
        probs.append(u + gamma[prefix] * probs[n - 2][suffixes[n - 1]])
    return _compact(counts, orders, keys, prefixes, keep, probs, gammas,
                    {"smoothing": smoothing, "discounts": discounts, "prune": prune,
                     "add_k": add_k if smoothing == "add-k" else None,
                     "unigram_interpolation": float(gamma0)})


def _unigram(values: np.ndarray, smoothing: str, add_k: float, predictable: int, discounts: list):
    total = float(values.sum())
    if total == 0:
        raise InputError("the corpus has no words left to count (empty, or every word under --min-count); "
                         "lower --min-count or give more text.")
    if smoothing == "kneser-ney":
        d = kneser_ney_discounts(values[values > 0])
        discounts.append(d)
        u = np.where(values > 0, (values - _discount(values, d)) / total, 0.0)
    elif smoothing == "witten-bell":
        u = values / (total + int((values > 0).sum()))
    else:
        u = values / (total + add_k * predictable)
    return u, max(1.0 - float(u.sum()), 1e-12)


def _compact(counts, orders, keys, prefixes, keep, probs, gammas, meta) -> NgramTables:
    """Drop pruned rows and renumber the trie; probabilities to log10 float32 as ARPA stores them."""
    V = len(counts.vocab)
    new_keys, logp, backoff = [keys[0]], [], []
    new_index = np.arange(V, dtype=np.int64)
    for n in range(1, len(orders) + 1):
        kept = keep[n - 1] if n > 1 else np.ones(V, dtype=bool)
        if n > 1:
            new_keys.append((new_index[prefixes[n - 1][kept]] * V
                             + orders[n - 1].rows[kept, -1]).astype(np.uint64))
            new_index = np.cumsum(kept) - 1
        with np.errstate(divide="ignore"):
            lp = np.log10(probs[n - 1][kept])
        logp.append(np.where(np.isfinite(lp), lp, NO_PROB).astype(np.float32))
        bo = np.log10(gammas[n - 1][kept]) if n < len(orders) else np.zeros(int(kept.sum()))
        backoff.append(bo.astype(np.float32))
    meta = {**meta, "sentences": counts.sentences, "tokens": counts.tokens, "unk_tokens": counts.unk_tokens,
            "ngrams": [len(k) for k in new_keys]}
    return NgramTables(list(counts.vocab), new_keys, logp, backoff, meta)
