"""The metric functions against scikit-learn and seqeval, and hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from lmforge.evaluation.classification import (
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    fairness_gaps,
    precision_recall_f1,
    roc_auc,
)
from lmforge.evaluation.tagging import chunks, entity_f1, qa_exact_match, qa_f1, segmentation_prf, token_accuracy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_precision_recall_f1_match_scikit_learn(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    gold, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    predicted[:50] = gold[:50]
    ours = precision_recall_f1(confusion_matrix(gold, predicted, 4))
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = metrics.precision_recall_fscore_support(gold, predicted, average=average, zero_division=0)
        assert ours[average]["precision"] == pytest.approx(p) and ours[average]["recall"] == pytest.approx(r)
        assert ours[average]["f1"] == pytest.approx(f)
    np.testing.assert_array_equal(confusion_matrix(gold, predicted, 4), metrics.confusion_matrix(gold, predicted))


def test_roc_auc_matches_scikit_learn_with_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + 0.3 * gold, 1)   # many ties
    assert roc_auc(gold, scores) == pytest.approx(metrics.roc_auc_score(gold, scores))
    assert roc_auc(np.ones(5, dtype=int), np.arange(5.0)) is None


def test_expected_calibration_error_hand_worked():
    # two confident right answers (0.9) and two hesitant ones (0.6), one of them wrong:
    # bin (0.8, 0.867]: none; bin of 0.9: accuracy 1, confidence 0.9 -> 0.1 * 2/4; bin of 0.6: accuracy .5 -> .1 * 2/4
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.6, 0.4]])
    gold = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, gold) == pytest.approx(0.1)


def test_report_and_fairness_gaps():
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    report = classification_report(np.array([0, 1, 1, 1]), probs, ["neg", "pos"], positive="pos")
    assert report["accuracy"] == 0.75 and report["per_class"]["pos"]["recall"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"]["counts"] == [[1, 0], [1, 2]] and report["roc_auc"] == 1.0
    gaps = fairness_gaps(np.array([1, 1, 1, 1]), np.array([1, 1, 1, 0]), np.array(["a", "a", "b", "b"]), 1)
    assert gaps["demographic_parity_difference"] == 0.5 and gaps["equal_opportunity_difference"] == 0.5


def test_entity_f1_matches_seqeval():
    seqeval = pytest.importorskip("seqeval.metrics")
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG"], ["I-MISC", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "I-ORG", "O"], ["B-MISC", "O"]]
    ours = entity_f1(gold, predicted)
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, predicted))
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, predicted))
    assert chunks(["B-A", "I-A", "I-B", "O"]) == {("A", 0, 2), ("B", 2, 3)}
    assert token_accuracy(gold, predicted) == pytest.approx(7 / 10)


def test_segmentation_and_qa_scoring():
    # gold 中国 | 人民 | 很 | 好 ; predicted 中国人 | 民 | 很 | 好: 2 of 4 words right both ways
    seg = segmentation_prf([["中国", "人民", "很", "好"]], [["中国人", "民", "很", "好"]])
    assert seg["precision"] == 0.5 and seg["recall"] == 0.5
    assert qa_exact_match("The Python FAQ", "python faq!") == 1.0
    assert qa_f1("the cat sat on the mat", "cat sat") == pytest.approx(2 * 1 * 0.5 / 1.5)
