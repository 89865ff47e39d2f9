"""word2vec and GloVe learn a planted structure; co-occurrence counting against a brute-force count and
with a tiny memory budget; Huffman codes."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from lmforge.embeddings.corpus import encode_corpus
from lmforge.embeddings.glove import GloVeConfig, count_cooccurrence, train_glove
from lmforge.embeddings.word2vec import Word2VecConfig, huffman, keep_probabilities, train_word2vec
from lmforge.tokenization.words import WordSplitter

WS = WordSplitter("whitespace")


def clustered_lines(seed: int = 0, lines: int = 1500) -> list[str]:
    """Two topics whose words never share a sentence: a0..a11 and b0..b11."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        topic = rng.choice("ab")
        out.append(" ".join(f"{topic}{rng.randrange(12)}" for _ in range(rng.randint(4, 10))))
    return out


def cluster_gap(words: list[str], vectors: np.ndarray) -> float:
    """Mean cosine within a topic minus mean cosine across topics."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    topic = np.array([w[0] for w in words])
    same = topic[:, None] == topic[None, :]
    off_diagonal = ~np.eye(len(words), dtype=bool)
    return float(cos[same & off_diagonal].mean() - cos[~same].mean())


@pytest.fixture(scope="module")
def corpus():
    return encode_corpus(clustered_lines(), WS, min_count=1)


@pytest.mark.parametrize("method,negative,hs", [("skipgram", 5, False), ("cbow", 5, False), ("skipgram", 0, True),
                                                ("cbow", 0, True)])
def test_word2vec_learns_the_planted_topics(corpus, method, negative, hs):
    config = Word2VecConfig(method=method, dim=16, window=3, negative=negative, hs=hs, epochs=3, sample=0)
    result = train_word2vec(corpus, config, workers=1)
    assert result["trained_words"] == len(corpus.ids) * 3
    assert cluster_gap(corpus.words, result["vectors"]) > 0.3


def test_word2vec_with_two_threads(corpus):
    result = train_word2vec(corpus, Word2VecConfig(dim=16, window=3, epochs=2, sample=0), workers=2)
    assert np.isfinite(result["vectors"]).all()
    assert cluster_gap(corpus.words, result["vectors"]) > 0.3


def test_glove_learns_the_planted_topics(corpus):
    cooc = count_cooccurrence(corpus, window=4)
    result = train_glove(corpus, cooc, GloVeConfig(dim=16, window=4, epochs=15), workers=1)
    assert result["costs"][-1] < result["costs"][0]
    assert cluster_gap(corpus.words, result["vectors"]) > 0.3


def brute_force_cooccurrence(corpus, window: int) -> dict:
    counts = defaultdict(float)
    for s in range(corpus.sentences):
        ids = corpus.ids[corpus.offsets[s]:corpus.offsets[s + 1]].tolist()
        for i, left in enumerate(ids):
            for d in range(1, window + 1):
                if i + d < len(ids):
                    counts[(left, ids[i + d])] += 1.0 / d
                    counts[(ids[i + d], left)] += 1.0 / d
    return counts


@pytest.mark.parametrize("memory", [1 << 30, 1 << 20])
def test_cooccurrence_counts_match_a_brute_force_count(memory, monkeypatch):
    import lmforge.embeddings.glove as glove

    corpus = encode_corpus(clustered_lines(3, 400) + ["a1 b1 a1"], WS, min_count=1)
    if memory < 1 << 30:   # a budget so small that blocks are tiny and sorted runs spill to disk
        monkeypatch.setattr(glove, "PAIR_BYTES", 1 << 12)
        monkeypatch.setattr(glove, "ENTRY_BYTES", 1 << 12)
        monkeypatch.setattr(glove, "MIN_BLOCK_WORDS", 100)
    cooc = count_cooccurrence(corpus, window=3, memory_bytes=memory)
    if memory < 1 << 30:
        assert cooc.spilled_runs > 1
    expected = brute_force_cooccurrence(corpus, 3)
    got = {(int(r), int(c)): float(v) for r, c, v in zip(cooc.rows, cooc.cols, cooc.values)}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5)


def test_huffman_codes_are_prefix_free_and_short_for_frequent_words():
    counts = np.array([50, 20, 10, 10, 5, 3, 1, 1])
    codes, points, lengths = huffman(counts)
    words = ["".join(map(str, codes[i, :lengths[i]])) for i in range(len(counts))]
    for i, a in enumerate(words):
        assert not any(b.startswith(a) for j, b in enumerate(words) if j != i)
    assert lengths[0] <= lengths[-1]
    assert (points[lengths > 0] < len(counts) - 1).all()


def test_subsampling_keeps_rare_words_and_drops_frequent_ones():
    keep = keep_probabilities(np.array([1_000_000, 100, 1]), 1e-3)
    assert keep[2] == 1.0 and keep[1] == 1.0 and keep[0] < 0.1


def test_min_count_drops_rare_words_from_the_stream():
    corpus = encode_corpus(["a a b c", "a c d"], WS, min_count=2)
    assert corpus.words == ["a", "c"]
    assert corpus.ids.tolist() == [0, 0, 1, 0, 1] and corpus.offsets.tolist() == [0, 3, 5]
