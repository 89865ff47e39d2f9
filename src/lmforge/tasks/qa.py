"""Extractive question answering (SQuAD layout: question, context, answer, answer_start).

A context longer than a window is read in overlapping windows (`[CLS] question [SEP] context part
[SEP]`, each part starting `stride` tokens after the previous); a window whose part holds the whole
answer is trained to point at its first and last token, any other window at [CLS] ("not here").
Prediction scores every valid span (end >= start, at most `max_answer` tokens, inside the context part)
of every window by start + end logit and keeps the best; its character offsets give the answer text.
Records whose answer is not the context's text at answer_start are reported and skipped.

When the answers are whole passages (FAQ answers, support articles: longer than any window), the unit is
the paragraph (`--qa-unit paragraph`, chosen by `auto` when most training answers are a whole block
between blank lines): each paragraph is one window `[CLS] question [SEP] paragraph [SEP]` (its start, if it
is longer), the answer's paragraph is trained to point at its first and last token, the others at [CLS];
a paragraph is ranked by its best span score over its "not here" score, and the best one is the answer,
whole. Paragraph ranking before span extraction, where the span is the paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lmforge.errors import InputError
from lmforge.evaluation.tagging import qa_exact_match, qa_f1
from lmforge.tasks.data import read_records
from lmforge.tasks.encode import Encoded


@dataclass
class QAExample:
    question: str
    context: str
    answer: str | None
    answer_start: int | None
    source: str = ""
    fields: dict | None = None

    @property
    def text(self) -> str:   # the hash split's key
        return self.question + self.context


def read_qa(path, question="question", context="context", answer="answer", start="answer_start"):
    """QA examples of a JSONL file; (examples, sources of skipped records)."""
    examples, skipped = [], []
    for record, where in read_records(path):
        for name in (question, context):
            if not isinstance(record.get(name), str):
                raise InputError(f"{where}: no {name!r} text (found {', '.join(sorted(record))}).")
        text, at = record.get(answer), record.get(start)
        if text is not None and (not isinstance(at, int) or record[context][at:at + len(text)] != text):
            skipped.append(where)
            continue
        examples.append(QAExample(record[question], record[context], text, at, where, record))
    return examples, skipped


@dataclass
class Window:
    example: int
    ids: np.ndarray            # int64 tokens
    segments: np.ndarray
    offsets: np.ndarray        # (T, 2) character offsets in the context; -1 outside the context part
    start: int                 # answer token positions (0, 0: not in this window)
    end: int
    paragraph: tuple[int, int] | None = None   # paragraph unit: the paragraph's characters in the context


QA_UNITS = ("auto", "span", "paragraph")
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def paragraphs(context: str) -> list[tuple[int, int]]:
    """Character spans of the blocks of a context between blank lines (surrounding whitespace left out)."""
    spans, begin = [], 0
    for gap in [*_BLANK_LINES.finditer(context), None]:
        end = gap.start() if gap else len(context)
        text = context[begin:end]
        if text.strip():
            lead = len(text) - len(text.lstrip())
            spans.append((begin + lead, begin + len(text.rstrip())))
        begin = gap.end() if gap else end
    return spans


def answers_are_paragraphs(examples: list[QAExample]) -> float:
    """Share of the answers that are a whole paragraph of their context (what --qa-unit auto decides by)."""
    answered = [e for e in examples if e.answer]
    whole = sum(any(e.context[a:b] == e.answer.strip() for a, b in paragraphs(e.context)) for e in answered)
    return whole / max(len(answered), 1)


def resolve_unit(unit: str, train: list[QAExample]) -> str:
    if unit != "auto":
        return unit
    return "paragraph" if answers_are_paragraphs(train) >= 0.5 else "span"


def paragraph_windows(examples: list[QAExample], tokenizer, max_len: int, max_question: int = 64) -> list[Window]:
    """A window per paragraph of every example: [CLS] question [SEP] paragraph (its start) [SEP]; the
    paragraph holding answer_start points at its first and last token in the window."""
    cls, sep = tokenizer.special_ids["cls"], tokenizer.special_ids["sep"]
    out = []
    for number, ex in enumerate(examples):
        question = tokenizer.hf.encode(ex.question).ids[:max_question]
        room = max_len - len(question) - 3
        if room < 8:
            raise InputError(f"--max-len {max_len}: too short for the question and a part of the context.")
        for p0, p1 in paragraphs(ex.context) or [(0, len(ex.context))]:
            encoding = tokenizer.hf.encode(ex.context[p0:p1])
            ids_part, offsets_part = encoding.ids[:room], encoding.offsets[:room]
            ids = [cls, *question, sep, *ids_part, sep]
            first = len(question) + 2
            offsets = np.full((len(ids), 2), -1, dtype=np.int64)
            if ids_part:
                offsets[first:first + len(ids_part)] = np.asarray(offsets_part, dtype=np.int64) + p0
            holds = ex.answer is not None and ids_part and p0 <= ex.answer_start < p1
            start, end = (first, first + len(ids_part) - 1) if holds else (0, 0)
            segments = np.array([0] * first + [1] * (len(ids) - first), dtype=np.int64)
            out.append(Window(number, np.asarray(ids, dtype=np.int64), segments, offsets, start, end, (p0, p1)))
    return out


def windows_of(examples: list[QAExample], tokenizer, max_len: int, stride: int, max_question: int = 64,
               unit: str = "span"):
    """Every window of every example (the encoder layout: [CLS] question [SEP] context [SEP]); windows
    start `stride` context tokens apart, or closer when fewer fit in one, so every token is read. The
    paragraph unit reads a window per paragraph instead (paragraph_windows)."""
    if unit == "paragraph":
        return paragraph_windows(examples, tokenizer, max_len, max_question)
    cls, sep = tokenizer.special_ids["cls"], tokenizer.special_ids["sep"]
    out = []
    for number, ex in enumerate(examples):
        question = tokenizer.hf.encode(ex.question).ids[:max_question]
        encoding = tokenizer.hf.encode(ex.context)
        ctx_ids, ctx_offsets = encoding.ids, encoding.offsets
        room = max_len - len(question) - 3
        if room < 8:
            raise InputError(f"--max-len {max_len}: too short for the question and a part of the context.")
        begin = 0
        while True:
            part = slice(begin, min(begin + room, len(ctx_ids)))
            ids = [cls, *question, sep, *ctx_ids[part], sep]
            first = len(question) + 2
            offsets = np.full((len(ids), 2), -1, dtype=np.int64)
            offsets[first:first + part.stop - part.start] = ctx_offsets[part]
            start = end = 0
            if ex.answer is not None:
                a0, a1 = ex.answer_start, ex.answer_start + len(ex.answer)
                inside = [i for i in range(first, first + part.stop - part.start) if offsets[i, 1] > a0
                          and offsets[i, 0] < a1]
                if inside and offsets[inside[0], 0] <= a0 and offsets[inside[-1], 1] >= a1:
                    start, end = inside[0], inside[-1]
            segments = np.array([0] * first + [1] * (len(ids) - first), dtype=np.int64)
            out.append(Window(number, np.asarray(ids, dtype=np.int64), segments, offsets, start, end))
            if part.stop >= len(ctx_ids):
                break
            begin += min(stride, room)   # a stride longer than a window's room would skip context tokens
    return out


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray,
              max_answer: int) -> tuple[float, int, int]:
    """(score, first token, last token) of the best valid span of one window (-inf when none)."""
    valid = offsets[:, 0] >= 0
    s = np.where(valid, start_logits, -np.inf)
    e = np.where(valid, end_logits, -np.inf)
    scores = s[:, None] + e[None, :]
    i, j = np.indices(scores.shape)
    scores[(j < i) | (j - i >= max_answer)] = -np.inf
    flat = int(np.argmax(scores))
    a, b = divmod(flat, scores.shape[1])
    return float(scores[a, b]), a, b


def best_windows(windows: list[Window], logits: list[np.ndarray], max_answer: int) -> dict[int, tuple[int, int, int]]:
    """Per example: (window number, first token, last token) of its answer. Span windows: the best span over
    its windows; paragraph windows: the paragraph whose best span stands highest over its own "not here"
    ([CLS]) score. Examples with no valid span anywhere are left out."""
    best: dict[int, tuple[float, int, int, int]] = {}
    for number, (window, row) in enumerate(zip(windows, logits)):
        score, a, b = best_span(row[:, 0], row[:, 1], window.offsets, max_answer)
        if window.paragraph is not None:
            score -= float(row[0, 0] + row[0, 1])
        if np.isfinite(score) and score > best.get(window.example, (-np.inf,))[0]:
            best[window.example] = (score, number, a, b)
    return {example: choice[1:] for example, choice in best.items()}


def answers(examples: list[QAExample], windows: list[Window], logits: list[np.ndarray], max_answer: int) -> list[str]:
    """The answer text of each example (best_windows): its best span, or its best paragraph whole."""
    out = [""] * len(examples)
    for example, (number, a, b) in best_windows(windows, logits, max_answer).items():
        window, context = windows[number], examples[example].context
        p0, p1 = window.paragraph if window.paragraph is not None else (window.offsets[a, 0], window.offsets[b, 1])
        out[example] = context[p0:p1]
    return out


def answer_exact(windows: list[Window], logits: list[np.ndarray], max_answer: int) -> float:
    """Share of the answered examples whose chosen answer (best_windows) is the gold one: the gold span in a
    window holding it, or (paragraph windows) the gold paragraph. What validation keeps the best weights by:
    it scores the choice prediction makes, across an example's windows."""
    gold = {w.example for w in windows if w.start > 0}
    chosen = best_windows(windows, logits, max_answer)
    right = 0
    for number, a, b in (chosen[example] for example in gold if example in chosen):
        window = windows[number]
        right += window.start > 0 and (window.paragraph is not None or (a, b) == (window.start, window.end))
    return right / max(len(gold), 1)


def _question_words(example: QAExample, stopwords: frozenset) -> set[str]:
    return {w.lower().strip(".,;:!?()\"'") for w in example.question.split()} - stopwords


def overlap_paragraph(example: QAExample, stopwords: frozenset = frozenset()) -> str:
    """The paragraph baseline: the paragraph holding the most distinct (non-stop) question words."""
    wanted = _question_words(example, stopwords)
    spans = paragraphs(example.context) or [(0, len(example.context))]
    hits = [len(wanted & {w.lower().strip(".,;:!?()\"'") for w in example.context[a:b].split()}) for a, b in spans]
    a, b = spans[int(np.argmax(hits))]
    return example.context[a:b]


def overlap_baseline(example: QAExample, width: int, stopwords: frozenset = frozenset()) -> str:
    """The sliding-window baseline: the `width`-word window of the context sharing the most (non-stop)
    words with the question."""
    words = example.context.split()
    if not words:
        return ""
    wanted = _question_words(example, stopwords)
    hits = np.array([w.lower().strip(".,;:!?()\"'") in wanted for w in words], dtype=np.int64)
    width = max(1, min(width, len(words)))
    sums = np.convolve(hits, np.ones(width, dtype=np.int64), mode="valid")
    first = int(np.argmax(sums))
    return " ".join(words[first:first + width])


def qa_encoded(windows: list[Window]) -> Encoded:
    """Windows as encoded examples with their (start, end) answer positions (kept for decoding answers)."""
    return Encoded([w.ids for w in windows], [w.segments for w in windows],
                   np.array([[w.start, w.end] for w in windows], dtype=np.int64), windows=windows)


def qa_report(examples: list[QAExample], predicted: list[str]) -> dict:
    """SQuAD exact match and token F1 of predicted answers."""
    gold = [e.answer or "" for e in examples]
    return {"examples": len(examples),
            "exact_match": float(np.mean([qa_exact_match(g, p) for g, p in zip(gold, predicted)])),
            "f1": float(np.mean([qa_f1(g, p) for g, p in zip(gold, predicted)]))}
