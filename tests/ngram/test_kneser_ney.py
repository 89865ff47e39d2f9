"""Modified Kneser-Ney against a hand-worked toy corpus and an independent, definition-level
implementation (Counters of tuples, written straight from Chen & Goodman), plus normalisation."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from lmforge.ngram.counting import count_corpus
from lmforge.ngram.estimate import estimate
from lmforge.ngram.model import NgramModel
from lmforge.tokenization.words import WordSplitter

WS = WordSplitter("whitespace")


def build(lines, order, **kw):
    counts = count_corpus(lines, WS, order)
    return NgramModel(estimate(counts, **kw))


def test_hand_worked_bigram_model():
    # sentences: "a b", "a b", "b a"; padded: <s> a b </s> | <s> a b </s> | <s> b a </s>
    model = build(["a b", "a b", "b a"], 2)
    # bigram counts (raw, highest order): <s> a:2, a b:2, b </s>:2, <s> b:1, b a:1, a </s>:1
    # count-of-counts t1=3 (<s> b, b a, a </s>), t2=3, t3=t4=0 -> too few to estimate: fallback discounts
    d1, d2, d3 = model.tables.meta["discounts"][1]
    assert (d1, d2, d3) == (0.5, 1.0, 1.5)
    # unigram adjusted counts = distinct left words: a {<s>, b} = 2, b {a, <s>} = 2, </s> {b, a} = 2
    # unigram t1 = 0 -> fallback (0.5, 1.0, 1.5); u(x) = (2 - 1.0) / 6 = 1/6 each, gamma0 = 1 - 3/6 = 1/2
    # uniform over the 4 predictable words (<unk> a b </s>): p(a) = 1/6 + 1/2 * 1/4 = 7/24
    p_uni = 1 / 6 + 0.5 / 4
    assert 10 ** model.tables.logp[0][model.index["a"]] == pytest.approx(p_uni, rel=1e-6)
    assert 10 ** model.tables.logp[0][model.index["<unk>"]] == pytest.approx(0.5 / 4, rel=1e-6)
    # p(b | a): context a has b:2, </s>:1, total 3; u = (2 - 1.0)/3, gamma(a) = (1.0*1 + 0.5*1)/3 = 0.5
    p_b_given_a = (2 - 1.0) / 3 + 0.5 * p_uni
    dist = model.next_distribution([model.index["a"]])
    assert dist[model.index["b"]] == pytest.approx(p_b_given_a, rel=1e-6)
    # an unseen bigram (a a) backs off: gamma(a) * p(a)
    assert dist[model.index["a"]] == pytest.approx(0.5 * p_uni, rel=1e-6)


def reference_kn(sentences: list[list[str]], N: int):
    """p(w | context) by the textbook definition of interpolated modified Kneser-Ney."""
    padded = [["<s>", *s, "</s>"] for s in sentences]
    raw = Counter()
    for s in padded:
        for n in range(1, N + 1):
            for i in range(len(s) - n + 1):
                raw[tuple(s[i:i + n])] += 1
    left = Counter()   # distinct left extensions
    for gram in raw:
        if len(gram) > 1:
            left[gram[1:]] += 1

    def adjusted(gram):
        return raw[gram] if len(gram) == N or gram[0] == "<s>" else left[gram]

    grams = {n: [g for g in raw if len(g) == n and g != ("<s>",)] for n in range(1, N + 1)}
    extensions: dict[tuple, list] = {}
    for n in range(2, N + 1):
        for g in grams[n]:
            extensions.setdefault(g[:-1], []).append(g)
    discounts = {}
    for n, gs in grams.items():
        t = [sum(1 for g in gs if adjusted(g) == k) for k in (1, 2, 3, 4)]
        assert min(t) > 0, (n, t)   # the corpus is big enough to estimate every discount
        y = t[0] / (t[0] + 2 * t[1])
        discounts[n] = [k - (k + 1) * y * t[k] / t[k - 1] for k in (1, 2, 3)]
        assert all(0 < d < k for d, k in zip(discounts[n], (1, 2, 3))), (n, discounts[n])
    vocab = ["<unk>"] + sorted({w for s in sentences for w in s}) + ["</s>"]

    def d(n, a):
        return discounts[n][min(a, 3) - 1]

    def prob(word, context):
        n = len(context) + 1
        if n == 1:
            total = sum(adjusted(g) for g in grams[1])
            a = adjusted((word,)) if (word,) in raw else 0
            u = (a - d(1, a)) / total if a else 0.0
            gamma = sum(d(1, adjusted(g)) for g in grams[1]) / total
            return u + gamma / len(vocab)
        ext = extensions.get(tuple(context), [])
        if not ext:
            return prob(word, context[1:])
        total = sum(adjusted(g) for g in ext)
        gram = (*context, word)
        u = (adjusted(gram) - d(n, adjusted(gram))) / total if gram in raw else 0.0
        gamma = sum(d(n, adjusted(g)) for g in ext) / total
        return u + gamma * prob(word, context[1:])

    return prob, vocab


def random_corpus(seed: int, lines: int = 800, size: int = 60) -> list[str]:
    """Zipfian words, each followed by a Zipfian choice among its own ordering of successors, plus a
    tail of rare words: natural enough count-of-counts that every discount of orders 1-4 is estimated."""
    rng = random.Random(seed)
    successors = [rng.sample(range(size), size) for _ in range(size)]
    zipf = [1 / (rank + 1) ** 1.3 for rank in range(size)]
    out = []
    for _ in range(lines):
        i = rng.choices(range(size), zipf)[0]
        words = [i]
        for _ in range(rng.randint(0, 9)):
            i = successors[i][rng.choices(range(size), zipf)[0]]
            words.append(i)
        out.append(" ".join(f"w{i}" if rng.random() > 0.05 else f"r{rng.randrange(150)}" for i in words))
    return out


@pytest.mark.parametrize("order", [2, 3, 4])
def test_matches_the_definition(order):
    lines = random_corpus(order)
    model = build(lines, order)
    prob, vocab = reference_kn([line.split() for line in lines], order)
    rng = random.Random(1)
    for _ in range(40):
        context = ["<s>"] * rng.randint(0, 1) + rng.choices(vocab[1:-1], k=order - 1)
        context = context[-(order - 1):]
        ids = [model.index[w] for w in context]
        dist = model.next_distribution(ids)
        for word in rng.sample(vocab, 5):
            assert dist[model.index[word]] == pytest.approx(prob(word, context), rel=2e-5), (context, word)


@pytest.mark.parametrize("kwargs", [dict(smoothing="kneser-ney"), dict(smoothing="witten-bell"),
                                    dict(smoothing="add-k", add_k=0.1), dict(smoothing="kneser-ney", prune=[0, 1, 1])])
def test_every_context_sums_to_one(kwargs):
    model = build(random_corpus(7), 3, **kwargs)
    t = model.tables
    contexts = [[int(w)] for w in range(t.vocab_size)] + [list(map(int, r)) for r in t.rows(2)]
    contexts.append([0, 0])   # never seen
    for context in contexts:
        dist = model.next_distribution(context)
        assert dist.sum() == pytest.approx(1.0, abs=2e-5), context
        assert dist[1] == 0.0   # <s> is never predicted


def test_pruning_drops_rare_ngrams_and_keeps_needed_contexts():
    full = build(random_corpus(3), 3)
    pruned = build(random_corpus(3), 3, prune=[0, 0, 1])
    assert pruned.tables.counts()[2] < full.tables.counts()[2]
    assert pruned.tables.counts()[1] == full.tables.counts()[1]
    # every stored trigram's prefix and suffix are stored bigrams (the lookups depend on it)
    rows = pruned.tables.rows(3)
    assert (pruned.tables.ids_of(rows[:, :2]) >= 0).all() and (pruned.tables.ids_of(rows[:, 1:]) >= 0).all()


def test_scoring_a_stream_equals_next_distribution():
    lines = random_corpus(5)
    model = build(lines, 3)
    sentence = lines[0].split() + ["unseen"]
    scored = model.score_sentences([sentence])
    ids = [1]
    expected = []
    for word in [*sentence, "</s>"]:
        wid = model.index.get(word, 0)
        expected.append(math.log10(model.next_distribution(ids)[wid]))
        ids.append(wid)
    np.testing.assert_allclose(scored.logp, expected, rtol=1e-5)
    assert scored.oov.tolist() == [False] * (len(sentence) - 1) + [True, False]


def test_workers_and_chunks_do_not_change_the_model(monkeypatch):
    import lmforge.ngram.counting as counting

    lines = random_corpus(11, 500)
    one = estimate(count_corpus(lines, WS, 3))
    monkeypatch.setattr(counting, "CHUNK_LINES", 37)
    monkeypatch.setattr(counting, "MERGE_ROWS", 100)
    two = estimate(count_corpus(lines, WS, 3, workers=2))
    assert one.vocab == two.vocab
    for a, b in zip(one.keys + one.logp + one.backoff, two.keys + two.logp + two.backoff):
        np.testing.assert_array_equal(a, b)


def test_min_count_maps_rare_words_to_unk():
    counts = count_corpus(["a a a b", "a c", "a a"], WS, 2, min_count=2)
    assert counts.vocab == ["<unk>", "<s>", "</s>", "a"]
    assert counts.unk_tokens == 2
    model = NgramModel(estimate(counts))
    # b and c were counted as <unk>: the bigram (a <unk>) exists and <unk> is predicted with real mass
    assert model.tables.ids_of(np.array([[3, 0]]))[0] >= 0
    scored = model.score_sentences([["a", "zebra"]])
    assert scored.oov.tolist() == [False, True, False]
