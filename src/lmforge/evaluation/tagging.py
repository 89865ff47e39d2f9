"""Metrics of sequence labelling, span extraction and segmentation, as pure functions:
token accuracy; entity-level precision/recall/F1 over BIO/IOB2/BIOES chunks (the CoNLL rule that
`seqeval` implements, checked against it); word segmentation P/R/F1 over character spans (the SIGHAN
bakeoff scoring); extractive QA exact match and token F1 (the SQuAD evaluation script's rules)."""

from __future__ import annotations

import re
import string
from collections import Counter


def token_accuracy(gold: list[list[str]], predicted: list[list[str]]) -> float:
    pairs = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)]
    return sum(g == p for g, p in pairs) / max(len(pairs), 1)


def chunks(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) entity spans of one sentence's BIO/IOB2/BIOES tags ("O" outside)."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-") if tag != "O" else ("O", "", "")
        ends = start is not None and (prefix in ("O", "B", "S") or label != kind)
        if ends:
            spans.add((kind, start, i))
            start = kind = None
        if prefix in ("B", "S") or (prefix in ("I", "E") and start is None):
            start, kind = i, label
        if prefix in ("E", "S") and start is not None:
            spans.add((kind, start, i + 1))
            start = kind = None
    return spans


def span_prf(gold: list[set], predicted: list[set]) -> dict:
    """Precision/recall/F1 of predicted span sets against gold ones, summed over sentences."""
    expected = sum(len(g) for g in gold)
    found = sum(len(p) for p in predicted)
    correct = sum(len(g & p) for g, p in zip(gold, predicted))
    precision, recall = correct / max(found, 1), correct / max(expected, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "spans": expected}


def entity_f1(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    result = span_prf([chunks(g) for g in gold], [chunks(p) for p in predicted])
    return {**result, "entities": result.pop("spans")}


def word_spans(words: list[str]) -> set[tuple[int, int]]:
    spans, at = set(), 0
    for word in words:
        spans.add((at, at + len(word)))
        at += len(word)
    return spans


def segmentation_prf(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Words count as right when their character span matches the gold segmentation exactly."""
    result = span_prf([word_spans(g) for g in gold], [word_spans(p) for p in predicted])
    return {**result, "words": result.pop("spans")}


def normalize_answer(text: str) -> str:
    """SQuAD: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def qa_exact_match(gold: str, predicted: str) -> float:
    return float(normalize_answer(gold) == normalize_answer(predicted))


def qa_f1(gold: str, predicted: str) -> float:
    g, p = normalize_answer(gold).split(), normalize_answer(predicted).split()
    if not g or not p:
        return float(g == p)
    common = sum((Counter(g) & Counter(p)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)
