"""MinHash signatures and LSH clusters: near duplicates found, different documents kept apart."""

import random

import numpy as np

from conftest import make_sentences
from lmforge.data.minhash import MinHashConfig, MinHasher, near_duplicate_clusters


def test_jaccard_estimate_and_clusters():
    rng = random.Random(0)
    base = [make_sentences(rng, 30) for _ in range(20)]
    edited = base[3].split()
    edited[10] = "CHANGED"  # one word in ~300: Jaccard of 5-gram sets about 0.97
    docs = base + [" ".join(edited), base[7].upper(), base[11] + " " + make_sentences(rng, 30)]
    hasher = MinHasher(MinHashConfig())
    signatures = np.stack([hasher.signature(d) for d in docs])
    assert signatures.shape == (23, 112) and signatures.dtype == np.uint32
    representative = near_duplicate_clusters(signatures, MinHashConfig())
    assert representative[20] == 3 and representative[21] == 7  # near copy, case change
    assert representative[22] == 22  # half the text is new: Jaccard ~0.5, kept
    assert list(representative[:20]) == list(range(20))


def test_signatures_are_stable_across_instances():
    text = "a stable signature must not depend on the process or python hash seed " * 3
    assert np.array_equal(MinHasher(MinHashConfig()).signature(text), MinHasher(MinHashConfig()).signature(text))
