"""Multi-label classification: each label is its own yes/no decision. A label is predicted when its
probability reaches its own threshold, chosen on the validation split to maximise that label's F1 (a rare
label usually wants a lower threshold than 0.5); the report gives per-label precision/recall/F1, their
macro and micro averages and exact match. Thresholds live in the run as `thresholds.json`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lmforge.artifacts import atomic_write_text
from lmforge.errors import InputError

THRESHOLDS = "thresholds.json"
THRESHOLDS_FORMAT, THRESHOLDS_VERSION = "lmforge.thresholds", 1
DEFAULT_THRESHOLD = 0.5
CANDIDATES = np.round(np.arange(0.05, 0.951, 0.05), 2)


def _f1(predicted: np.ndarray, gold: np.ndarray) -> tuple[float, float, float]:
    tp = float((predicted & gold).sum())
    precision = tp / max(float(predicted.sum()), 1.0)
    recall = tp / max(float(gold.sum()), 1.0)
    return precision, recall, 2 * tp / max(float(predicted.sum() + gold.sum()), 1.0)


def choose_thresholds(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """(L,) per-label thresholds maximising each label's F1 on (N, L) probabilities and 0/1 gold; a label
    absent from the split keeps 0.5 (nothing to choose by). Ties go to the threshold nearest 0.5."""
    gold = gold > 0.5
    out = np.full(probabilities.shape[1], DEFAULT_THRESHOLD)
    order = np.argsort(np.abs(CANDIDATES - DEFAULT_THRESHOLD), kind="stable")
    for label in range(probabilities.shape[1]):
        if not gold[:, label].any():
            continue
        scores = [_f1(probabilities[:, label] >= CANDIDATES[i], gold[:, label])[2] for i in order]
        out[label] = CANDIDATES[order[int(np.argmax(scores))]]
    return out


def decide(probabilities: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """(N, L) bools: labels at or above their thresholds; each row keeps at least its most probable label
    (an example of a multi-label set carries one or more)."""
    limits = np.full(probabilities.shape[1], DEFAULT_THRESHOLD) if thresholds is None else thresholds
    chosen = probabilities >= limits
    empty = ~chosen.any(axis=1)
    chosen[empty, probabilities[empty].argmax(axis=1)] = True
    return chosen


def report(probabilities: np.ndarray, gold: np.ndarray, names: list[str], thresholds: np.ndarray | None) -> dict:
    predicted, truth = decide(probabilities, thresholds), gold > 0.5
    per_label = {}
    for i, name in enumerate(names):
        p, r, f = _f1(predicted[:, i], truth[:, i])
        per_label[name] = {"precision": p, "recall": r, "f1": f, "support": int(truth[:, i].sum()),
                           "threshold": float(thresholds[i]) if thresholds is not None else DEFAULT_THRESHOLD}
    micro = _f1(predicted, truth)
    return {"examples": len(probabilities), "multi_label": True,
            "micro_f1": micro[2], "micro_precision": micro[0], "micro_recall": micro[1],
            "macro_f1": float(np.mean([row["f1"] for row in per_label.values()])),
            "exact_match": float((predicted == truth).all(axis=1).mean()),
            "labels_per_example": float(predicted.sum(axis=1).mean()), "per_label": per_label,
            "thresholds": "chosen on the validation split" if thresholds is not None else "0.5"}


def save_thresholds(run: Path, names: list[str], thresholds: np.ndarray) -> None:
    atomic_write_text(Path(run) / THRESHOLDS, json.dumps(
        {"format": THRESHOLDS_FORMAT, "version": THRESHOLDS_VERSION,
         "thresholds": {name: float(t) for name, t in zip(names, thresholds)}}, indent=2, ensure_ascii=False) + "\n")


def load_thresholds(run: Path, names: list[str]) -> np.ndarray | None:
    path = Path(run) / THRESHOLDS
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format") != THRESHOLDS_FORMAT or meta.get("version", 0) > THRESHOLDS_VERSION:
            raise ValueError("not a thresholds file of this lmforge")
        return np.array([float(meta["thresholds"].get(name, DEFAULT_THRESHOLD)) for name in names])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{path}: damaged ({error}); delete it (0.5 is then used) or fine-tune again.") from None
