"""Classification metrics as pure NumPy functions over label ids (checked against scikit-learn in the
tests): accuracy, per-class precision/recall/F1 with macro, micro and weighted averages, the confusion
matrix, ROC-AUC for binary tasks, expected calibration error, and metrics per slice with their gaps."""

from __future__ import annotations

import numpy as np


def confusion_matrix(gold: np.ndarray, predicted: np.ndarray, n_labels: int) -> np.ndarray:
    """counts[i, j]: examples of gold class i predicted as j."""
    return np.bincount(gold * n_labels + predicted, minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.shape(a), dtype=np.float64), where=np.asarray(b) > 0)


def precision_recall_f1(confusion: np.ndarray) -> dict:
    """Per class and averaged (macro over classes with gold or predicted examples, as scikit-learn with
    labels present; micro = accuracy for single-label tasks; weighted by gold support)."""
    tp = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision, recall = _safe_divide(tp, predicted), _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    present = (support + predicted) > 0
    micro_p = tp.sum() / max(predicted.sum(), 1)
    micro_r = tp.sum() / max(support.sum(), 1)
    weights = support / max(support.sum(), 1)
    return {
        "per_class": {"precision": precision, "recall": recall, "f1": f1, "support": support},
        "macro": {"precision": float(precision[present].mean()), "recall": float(recall[present].mean()),
                  "f1": float(f1[present].mean())} if present.any() else {"precision": 0.0, "recall": 0.0, "f1": 0.0},
        "micro": {"precision": float(micro_p), "recall": float(micro_r),
                  "f1": float(2 * micro_p * micro_r / (micro_p + micro_r)) if micro_p + micro_r else 0.0},
        "weighted": {"precision": float((precision * weights).sum()), "recall": float((recall * weights).sum()),
                     "f1": float((f1 * weights).sum())},
    }


def roc_auc(gold_binary: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve: the probability that a random positive outranks a random negative
    (ties count a half), from the ranks of the scores."""
    positives, negatives = int(gold_binary.sum()), int((1 - gold_binary).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse = np.unique(scores, return_inverse=True)   # average the ranks of tied scores
    ranks = (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]
    return float((ranks[gold_binary == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def expected_calibration_error(probabilities: np.ndarray, gold: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by the bins' sizes."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == gold
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def classification_report(gold: np.ndarray, probabilities: np.ndarray, labels: list[str],
                          positive: str | None = None) -> dict:
    """Every metric of a single-label classifier, as one JSON-ready object."""
    gold = np.asarray(gold, dtype=np.int64)
    predicted = probabilities.argmax(axis=1)
    confusion = confusion_matrix(gold, predicted, len(labels))
    prf = precision_recall_f1(confusion)
    per_class = {label: {k: float(prf["per_class"][k][i]) for k in ("precision", "recall", "f1")}
                 | {"support": int(prf["per_class"]["support"][i])} for i, label in enumerate(labels)}
    report = {"examples": int(len(gold)), "accuracy": float((predicted == gold).mean()) if len(gold) else 0.0,
              "macro_f1": prf["macro"]["f1"], "micro_f1": prf["micro"]["f1"], "weighted_f1": prf["weighted"]["f1"],
              "macro": prf["macro"], "micro": prf["micro"], "weighted": prf["weighted"], "per_class": per_class,
              "confusion_matrix": {"labels": labels, "counts": confusion.tolist()},
              "ece": expected_calibration_error(probabilities, gold) if len(gold) else None}
    if len(labels) == 2:
        index = labels.index(positive) if positive in labels else 1
        report["roc_auc"] = roc_auc((gold == index).astype(np.int64), probabilities[:, index])
        report["positive_label"] = labels[index]
    return report


def fairness_gaps(gold: np.ndarray, predicted: np.ndarray, groups: np.ndarray, positive: int) -> dict:
    """Demographic parity difference (largest gap in the rate of positive predictions between groups)
    and equal opportunity difference (largest gap in the true positive rate)."""
    rates, tprs = {}, {}
    for group in np.unique(groups):
        inside = groups == group
        rates[str(group)] = float((predicted[inside] == positive).mean())
        gold_positive = inside & (gold == positive)
        if gold_positive.any():
            tprs[str(group)] = float((predicted[gold_positive] == positive).mean())
    return {"positive_rate": rates, "true_positive_rate": tprs,
            "demographic_parity_difference": max(rates.values()) - min(rates.values()) if rates else None,
            "equal_opportunity_difference": max(tprs.values()) - min(tprs.values()) if len(tprs) > 1 else None}


def slice_report(metric_of, slices: np.ndarray, metric: str) -> dict:
    """`metric_of(mask) -> report` for every slice value; the worst slice and the largest gap in `metric`."""
    per_slice = {}
    for value in sorted({str(v) for v in slices}):
        mask = np.array([str(v) == value for v in slices])
        per_slice[value] = {"examples": int(mask.sum()), **metric_of(mask)}
    scores = {k: v[metric] for k, v in per_slice.items() if v.get(metric) is not None}
    worst = min(scores, key=scores.get) if scores else None
    return {"metric": metric, "slices": per_slice, "worst_slice": worst,
            "gap": (max(scores.values()) - min(scores.values())) if scores else None}
