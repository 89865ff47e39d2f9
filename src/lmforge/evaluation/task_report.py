"""The report of a task model on labelled examples: every metric in one JSON object, per slice with the
gaps between slices, and a confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmforge.evaluation.classification import classification_report, fairness_gaps, slice_report
from lmforge.evaluation.plots import save_figure
from lmforge.evaluation.tagging import entity_f1, token_accuracy


def classify_report(probabilities: np.ndarray, gold: np.ndarray, labels: list[str], slices=None,
                    positive: str | None = None) -> dict:
    """`gold` holds label ids, -1 for labels the model never saw in training (counted wrong)."""
    unseen = int((gold < 0).sum())
    safe_gold = np.where(gold < 0, len(labels), gold)
    # an unseen label is an extra class no prediction can hit
    padded = np.concatenate([probabilities, np.zeros((len(probabilities), 1))], axis=1) if unseen else probabilities
    names = labels + ["<unseen>"] if unseen else labels
    report = classification_report(safe_gold, padded, names, positive)
    report["unseen_label_examples"] = unseen
    if slices is not None:
        def metric_of(mask):
            sub = classification_report(safe_gold[mask], padded[mask], names, positive)
            # macro-F1 over the classes the slice's gold labels hold: a class absent from a slice has no F1
            # there (averaging its 0 in made a one-class slice at 99% accuracy read 0.33)
            present = [row["f1"] for row in sub["per_class"].values() if row["support"] > 0]
            return {"accuracy": sub["accuracy"], "macro_f1": float(np.mean(present)) if present else 0.0,
                    "classes": len(present)}
        # slices are compared by accuracy: a slice often holds one gold class (a spam source, a group), where
        # macro-F1 halves whenever one example is wrong
        report["slices"] = slice_report(metric_of, np.asarray(slices, dtype=object), "accuracy")
        if len(labels) == 2:
            index = labels.index(positive) if positive in labels else 1
            report["slices"]["fairness"] = fairness_gaps(safe_gold, padded.argmax(axis=1),
                                                         np.asarray([str(s) for s in slices]), index)
    return report


def tag_report(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    report = {"sentences": len(gold), "words": sum(map(len, gold)), "token_accuracy": token_accuracy(gold, predicted)}
    if any(t[:2] in ("B-", "I-", "E-", "S-") for sentence in gold for t in sentence):
        report["entity"] = entity_f1(gold, predicted)
    return report


def plot_confusion(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report["confusion_matrix"]["labels"]
    counts = np.asarray(report["confusion_matrix"]["counts"])
    size = min(12, 2 + 0.5 * len(labels))
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center",
                        color="white" if counts[i, j] > counts.max() / 2 else "black", fontsize=8)
    ax.set_title(f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}")
    save_figure(fig, out)
