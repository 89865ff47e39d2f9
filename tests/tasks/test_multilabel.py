"""Multi-label classification: one-vs-rest TF-IDF baselines, thresholds chosen on the validation split,
predict returning the set of labels, and eval's per-label, macro and micro F1 (checked with scikit-learn)."""

import json
import random

import numpy as np
import pytest
from sklearn.metrics import f1_score
from tests.conftest import WORDS

from lmforge.tasks.multilabel import choose_thresholds, decide, report

KEYWORDS = {"sport": "goal", "music": "guitar", "food": "bread"}


def examples(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        labels = rng.sample(sorted(KEYWORDS), rng.choice([1, 1, 2, 3]))
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 8))] + [KEYWORDS[label] for label in labels]
        rng.shuffle(words)
        out.append({"text": " ".join(words), "label": labels})
    return out


@pytest.fixture(scope="module")
def multi_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    for split, n, seed in (("train", 300, 0), ("valid", 80, 1), ("test", 80, 2)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in examples(n, seed)))
    return folder


def test_the_report_agrees_with_scikit_learn():
    rng = np.random.default_rng(0)
    gold = rng.random((50, 4)) < 0.3
    probabilities = np.clip(gold * 0.3 + rng.random((50, 4)) * 0.5, 0, 1)   # overlapping: thresholds matter
    thresholds = choose_thresholds(probabilities, gold)
    predicted = decide(probabilities, thresholds)
    got = report(probabilities, gold, ["a", "b", "c", "d"], thresholds)
    assert got["micro_f1"] == pytest.approx(f1_score(gold, predicted, average="micro"))
    assert got["macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro", zero_division=0))
    per_label = f1_score(gold, predicted, average=None, zero_division=0)
    assert [got["per_label"][n]["f1"] for n in "abcd"] == pytest.approx(list(per_label))
    # thresholds chosen on a split never do worse on it than 0.5, label by label
    chosen = f1_score(gold, probabilities >= thresholds, average=None, zero_division=0)
    at_half = f1_score(gold, probabilities >= 0.5, average=None, zero_division=0)
    assert np.all(chosen >= at_half - 1e-9) and chosen.sum() > at_half.sum()


def test_a_label_absent_from_validation_keeps_one_half():
    probabilities = np.array([[0.9, 0.2], [0.1, 0.3]])
    assert choose_thresholds(probabilities, np.array([[1, 0], [0, 0]]))[1] == 0.5


@pytest.mark.parametrize("model", [["--model", "tfidf-logreg"],
                                   # word n-grams only: goal and guitar share "<g", which with three keywords
                                   # is a confound that a real vocabulary averages out
                                   ["--model", "fasttext", "--epochs", "30", "--lr", "0.05", "--threads", "1",
                                    "--model-args", "min_char_ngram=0", "max_char_ngram=0"]])
def test_predict_returns_every_label_of_a_planted_example(multi_data, tmp_path, cli, model):
    run = tmp_path / "run"
    result = cli("finetune", "--task", "classify", *model, "--data", multi_data, "--out", run, "--json")
    assert result.code == 0, result.err
    trained = result.json()
    assert set(trained["thresholds"]) == set(KEYWORDS)
    assert json.loads((run / "thresholds.json").read_text())["format"] == "lmforge.thresholds"
    predicted = cli("predict", "--run", run, "the river guitar and bread", "the old goal", "--json").json()
    first, second = predicted["predictions"]
    assert sorted(first["labels"]) == ["food", "music"] and second["labels"] == ["sport"]
    evaluated = cli("eval", "--run", run, "--split", "test", "--json").json()
    assert set(evaluated["per_label"]) == set(KEYWORDS)
    assert evaluated["macro_f1"] > 0.9 and evaluated["micro_f1"] > 0.9 and evaluated["exact_match"] > 0.7
    table = cli("eval", "--run", run, "--split", "test")
    assert "macro-F1" in table.err and "threshold" in table.err
