"""Chinese word segmentation as character tagging: each character of a word gets B (begin), M (middle),
E (end) or S (a one-character word), optionally joined with the word's POS tag (`B-n`, `E-n`, ...), so
one tagger segments and tags at once. Decoding turns a tag sequence back into words; a malformed
sequence (an M or E without a B) starts a new word, so every character is placed."""

from __future__ import annotations

from lmforge.evaluation.tagging import segmentation_prf, token_accuracy
from lmforge.tasks.data import Sentence


def to_bmes(sentence: Sentence, joint_pos: bool) -> Sentence:
    chars, tags = [], []
    for word, pos in zip(sentence.words, sentence.tags):
        letters = list(word)
        marks = ["S"] if len(letters) == 1 else ["B", *["M"] * (len(letters) - 2), "E"]
        chars.extend(letters)
        tags.extend(f"{m}-{pos}" if joint_pos else m for m in marks)
    return Sentence(chars, tags, sentence.source)


def from_bmes(chars: list[str], tags: list[str]) -> tuple[list[str], list[str | None]]:
    """(words, their POS or None) of a character tagging."""
    words, pos, current, current_pos = [], [], "", None
    for char, tag in zip(chars, tags):
        mark, _, kind = tag.partition("-")
        if mark in ("B", "S") or not current:
            if current:
                words.append(current)
                pos.append(current_pos)
            current, current_pos = char, kind or None
        else:
            current += char
        if mark in ("E", "S"):
            words.append(current)
            pos.append(current_pos)
            current, current_pos = "", None
    if current:
        words.append(current)
        pos.append(current_pos)
    return words, pos


def jieba_words(text: str) -> list[str]:
    """jieba's default (accurate) mode: the reference a user would otherwise pick."""
    try:
        import jieba
    except ImportError:
        from lmforge.errors import InputError

        raise InputError("--model jieba needs the jieba package: pip install jieba (or 'lmforge[apps]').") from None
    jieba.setLogLevel(60)
    return [w for w in jieba.lcut(text) if w.strip()]


def segment_report(sentences, predicted_tags: list[list[str]]) -> dict:
    """Word P/R/F1 of the segmentation (SIGHAN scoring: a word is right when its character span is), the
    character tag accuracy, and with joint POS the share of gold words found with their POS."""
    gold = [from_bmes(s.words, s.tags) for s in sentences]
    found = [from_bmes(s.words, tags) for s, tags in zip(sentences, predicted_tags)]
    report = {"sentences": len(sentences), "characters": sum(len(s.words) for s in sentences),
              "char_tag_accuracy": token_accuracy([s.tags for s in sentences], predicted_tags),
              "segmentation": segmentation_prf([g[0] for g in gold], [f[0] for f in found])}
    if any(p for g in gold for p in g[1]):
        right = total = 0
        for (gw, gp), (fw, fp) in zip(gold, found):
            predicted = {}
            at = 0
            for word, pos in zip(fw, fp):
                predicted[(at, at + len(word))] = pos
                at += len(word)
            at = 0
            for word, pos in zip(gw, gp):
                right += predicted.get((at, at + len(word)), "<none>") == pos
                total += 1
                at += len(word)
        report["pos_accuracy_on_gold_words"] = right / max(total, 1)
    return report
