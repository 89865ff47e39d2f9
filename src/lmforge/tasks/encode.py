"""Examples -> token ids for a backbone, and labels -> ids.

Classification: an encoder reads `[CLS] text [SEP]` (a pair: `[CLS] a [SEP] b [SEP]`, segments 0/1); a
decoder or recurrent model reads `text <eos>` (a pair: `a [SEP] b <eos>`), so its last position has seen
everything (last-token pooling). Tagging: each word is encoded on its own (with the space before it
that byte-level and SentencePiece tokenizers mark), its tag goes on its first sub-token and the other
sub-tokens are ignored (-100) by the loss and the metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmforge.errors import InputError
from lmforge.evaluation.masked import IGNORE


@dataclass
class Encoded:
    ids: list[np.ndarray]            # int64 per example
    segments: list[np.ndarray] | None
    labels: np.ndarray               # (N,) ids, (N, L) multi-hot, or per-example arrays for tagging
    word_starts: list[np.ndarray] | None = None   # tagging: token positions of each word's first piece
    origin: list[tuple[int, int]] | None = None   # (sentence, first word) of a tagged sequence, or (text, window)
    windows: list | None = None                   # QA: the context windows the sequences are (tasks/qa.py)


class Labels:
    """Label names <-> ids; labels unseen in training map to None (reported, never a crash)."""

    def __init__(self, names: list[str]):
        self.names = list(names)
        self.index = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def from_training(cls, values, what: str = "label") -> Labels:
        names = sorted({v for value in values for v in (value if isinstance(value, list) else [value])})
        if len(names) < 2 and what == "label":
            raise InputError(f"the training data has a single {what} ({names[0] if names else 'none'}): a classifier "
                             "needs at least two; check --label-field.")
        return cls(names)

    def ids(self, values) -> tuple[np.ndarray, list[str]]:
        """Ids of single labels (-1 for unseen ones) and the unseen names."""
        unseen = sorted({v for v in values if v not in self.index})
        return np.array([self.index.get(v, -1) for v in values], dtype=np.int64), unseen

    def multi_hot(self, values) -> tuple[np.ndarray, list[str]]:
        out = np.zeros((len(values), len(self.names)), dtype=np.float32)
        unseen = set()
        for row, labels in enumerate(values):
            for label in labels:
                if label in self.index:
                    out[row, self.index[label]] = 1.0
                else:
                    unseen.add(label)
        return out, sorted(unseen)


def special(tokenizer, role: str) -> int:
    tokenizer.require(role, purpose="fine-tuning inputs")
    return tokenizer.special_ids[role]


def encode_texts(tokenizer, encoder: bool, texts: list[str], texts2: list[str] | None, max_len: int):
    """Token ids (and segments for pairs) as the family expects them, truncated to max_len."""
    first = tokenizer.encode_batch(texts)
    second = tokenizer.encode_batch(texts2) if texts2 is not None else None
    ids, segments = [], []
    if encoder:
        cls, sep = special(tokenizer, "cls"), special(tokenizer, "sep")
    else:
        sep, eos = special(tokenizer, "sep"), special(tokenizer, "eos")
    for row, a in enumerate(first):
        b = second[row] if second is not None else None
        budget = max_len - (3 if encoder and b is not None else 2)
        if b is not None:   # truncate the longer of the two first
            while len(a) + len(b) > budget:
                if len(a) >= len(b):
                    a = a[:-1]
                else:
                    b = b[:-1]
        else:
            a = a[:budget]
        if encoder:
            seq = [cls, *a, sep] + ([*b, sep] if b is not None else [])
            seg = [0] * (len(a) + 2) + ([1] * (len(b) + 1) if b is not None else [])
        else:
            seq = [*a] + ([sep, *b] if b is not None else []) + [eos]
            # the second text marked as for an encoder: a decoder ignores segments, a BiLSTM's match
            # features read them
            seg = [0] * (len(a) + 1) + [1] * (len(b) + 1) if b is not None else [0] * len(seq)
        ids.append(np.asarray(seq, dtype=np.int64))
        segments.append(np.asarray(seg, dtype=np.int64))
    return ids, (segments if second is not None else None)


class WordPieces:
    """Sub-token ids of words (cached: a corpus has far fewer word types than words)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cache: dict[str, list[int]] = {}
        # byte-level BPE and SentencePiece encode a word's leading space into its first piece
        self.spaced = tokenizer.kind in ("bpe", "byte", "unigram")

    def pieces(self, words: list[str]) -> list[list[int]]:
        keys = [(" " + w if (i and self.spaced) else w) for i, w in enumerate(words)]
        missing = [k for k in dict.fromkeys(keys) if k not in self.cache]
        if missing:
            for key, ids in zip(missing, self.tokenizer.encode_batch(missing)):
                self.cache[key] = ids or [self.tokenizer.unk_id if self.tokenizer.unk_id is not None else 0]
        return [self.cache[k] for k in keys]


def encode_words(tokenizer, encoder: bool, sentences: list[list[str]], max_len: int):
    """Ids and first-piece positions of tagged sentences. A sentence longer than max_len continues in
    further sequences, so no word goes unlabelled; `origin` gives each sequence's (sentence, first word)."""
    pieces = WordPieces(tokenizer)
    prefix = [special(tokenizer, "cls")] if encoder else []
    suffix = [special(tokenizer, "sep")] if encoder else []
    room = max_len - len(prefix) - len(suffix)
    if room < 1:
        raise InputError(f"--max-len {max_len}: too short to hold a word.")
    ids, starts, origin = [], [], []
    for number, words in enumerate(sentences):
        word_pieces, at = pieces.pieces(words), 0
        while True:
            seq, first, begin = list(prefix), [], at
            while at < len(words):
                piece = word_pieces[at][:room]    # a single word longer than a sequence keeps its first pieces
                if first and len(seq) + len(piece) + len(suffix) > max_len:
                    break
                first.append(len(seq))
                seq.extend(piece)
                at += 1
            ids.append(np.asarray(seq + suffix, dtype=np.int64))
            starts.append(np.asarray(first, dtype=np.int64))
            origin.append((number, begin))
            if at >= len(words):
                break
    return ids, starts, origin


def tag_targets(starts: list[np.ndarray], lengths: list[int], tag_ids: list[np.ndarray]) -> list[np.ndarray]:
    """Per sequence: the tag id at each word's first piece, IGNORE everywhere else."""
    out = []
    for first, length, tags in zip(starts, lengths, tag_ids):
        target = np.full(length, IGNORE, dtype=np.int64)
        target[first] = tags[:len(first)]
        out.append(target)
    return out


def encode_chunks(tokenizer, encoder: bool, texts: list[str], max_len: int, chunks: int):
    """Each text as up to `chunks` sequences of max_len tokens: all its windows when it has that many or
    fewer, else `chunks` windows spread evenly from its start to its end. Returns the ids and each
    sequence's (text, window) origin."""
    if encoder:
        before, after = [special(tokenizer, "cls")], [special(tokenizer, "sep")]
    else:
        before, after = [], [special(tokenizer, "eos")]
    budget = max(1, max_len - len(before) - len(after))
    ids, origin = [], []
    for number, tokens in enumerate(tokenizer.encode_batch(texts)):
        windows = [tokens[start:start + budget] for start in range(0, max(len(tokens), 1), budget)]
        if len(windows) > chunks:
            windows = [windows[i] for i in np.unique(np.linspace(0, len(windows) - 1, chunks).round().astype(int))]
        for k, window in enumerate(windows):
            ids.append(np.asarray(before + list(window) + after, dtype=np.int64))
            origin.append((number, k))
    return ids, origin


def mean_by_origin(rows: np.ndarray, origin: list[tuple[int, int]]) -> np.ndarray:
    """(sequences, labels) logits -> (texts, labels): the mean over each text's windows."""
    texts = np.array([number for number, _ in origin])
    sums = np.zeros((texts.max() + 1 if len(texts) else 0, rows.shape[1]), dtype=np.float64)
    np.add.at(sums, texts, rows)
    return sums / np.bincount(texts, minlength=len(sums))[:, None]


def encode_classification(examples, tokenizer, encoder: bool, max_len: int, labels: Labels,
                          multi_label: bool, chunks: int = 1) -> tuple[Encoded, list[str]]:
    """Encoded texts (pairs when the examples have text2) and label ids; the unseen label names. With
    `chunks` > 1 a long single text becomes several sequences, each with the text's label, and `origin`
    maps them back (predictions average their logits)."""
    pairs = bool(examples) and examples[0].text2 is not None
    origin = None
    if chunks > 1 and not pairs:
        ids, origin = encode_chunks(tokenizer, encoder, [e.text for e in examples], max_len, chunks)
        segments = None
    else:
        ids, segments = encode_texts(tokenizer, encoder, [e.text for e in examples],
                                     [e.text2 or "" for e in examples] if pairs else None, max_len)
    values = [e.label for e in examples]
    if multi_label:
        y, unseen = labels.multi_hot([v if isinstance(v, list) else [v] for v in values])
    else:
        y, unseen = labels.ids(values)
    if origin is not None:
        y = y[[number for number, _ in origin]]
    return Encoded(ids, segments, y, origin=origin), unseen


def encode_tagging(sentences, tokenizer, encoder: bool, max_len: int, tags: Labels) -> tuple[Encoded, list[str], int]:
    """Encoded sentences with their first-piece targets; the unseen tags and how many sentences were
    longer than one sequence (they continue in the next)."""
    ids, starts, origin = encode_words(tokenizer, encoder, [s.words for s in sentences], max_len)
    per_sentence, unseen = [], set()
    for sentence in sentences:
        # a sentence to predict has no tags yet: its targets are all ignored
        found, missing = tags.ids(sentence.tags) if sentence.tags else (np.full(len(sentence.words), IGNORE), [])
        per_sentence.append(found)
        unseen.update(missing)
    tag_ids = [per_sentence[n][begin:begin + len(first)] for (n, begin), first in zip(origin, starts)]
    split = len(ids) - len(sentences)
    return (Encoded(ids, None, tag_targets(starts, [len(i) for i in ids], tag_ids), starts, origin), sorted(unseen),
            split)
