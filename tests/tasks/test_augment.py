"""Augmentation: EDA operations with word-vector synonyms, character noise, sizes and labels kept."""

from __future__ import annotations

import random

import numpy as np
from tests.tasks.test_finetune import keyword_data, keyword_examples  # noqa: F401 (fixture)

from lmforge.embeddings.vectors import WordVectors
from lmforge.tasks.augment import Synonyms, augment_examples, char_noise, eda
from lmforge.tasks.data import Example


def synonyms() -> Synonyms:
    e = np.eye(8)
    vectors = {"good": e[0], "great": e[0] + 0.05 * e[1], "fine": e[0] + 0.1 * e[2], "river": e[3], "stone": e[4]}
    return Synonyms(WordVectors(list(vectors), np.stack(list(vectors.values())).astype(np.float32)))


def test_synonyms_come_from_the_vectors():
    assert set(synonyms().of("Good")) == {"great", "fine"}
    assert synonyms().of("unknown") == []


def test_eda_keeps_the_text_close_and_is_seeded():
    text = "the good river runs under the old stone bridge"
    a = [eda(text, random.Random(s), synonyms()) for s in range(20)]
    assert a == [eda(text, random.Random(s), synonyms()) for s in range(20)]
    assert any(x != text for x in a)
    for x in a:
        assert abs(len(x.split()) - len(text.split())) <= 1
    assert any("great" in x or "fine" in x for x in a)   # a synonym replacement or insertion happened


def test_augment_examples_sizes_and_labels():
    examples = [Example(f"word{i} good text here", "pos" if i % 2 else "neg") for i in range(10)]
    out = augment_examples(examples, "eda", 2.5, 0)
    assert len(out) == 25 and out[:10] == examples
    assert [e.label for e in out[10:]] == [examples[k % 10].label for k in range(15)]
    noisy = char_noise("a quiet engine learns slowly", random.Random(3), rate=0.3)
    assert noisy != "a quiet engine learns slowly" and abs(len(noisy) - 28) <= 8


def test_cli_augment_on_a_small_subset(cli, keyword_data, tmp_path):  # noqa: F811
    small = cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", keyword_data,
                "--train-fraction", "0.3", "--out", tmp_path / "small", "--json").json()
    doubled = cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", keyword_data,
                  "--train-fraction", "0.3", "--augment", "eda", "--augment-factor", "2", "--out", tmp_path / "aug",
                  "--json").json()
    assert 40 < small["examples"]["train"] < 110 and doubled["examples"]["train"] == 2 * small["examples"]["train"]
    assert doubled["valid"]["accuracy"] > 0.8
