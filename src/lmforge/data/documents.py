"""The document record that flows through every data step."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# scripts written without spaces between words: each character counts as a word
# (Han, Hiragana/Katakana, Hangul syllables are spaced but dense too, Thai, Lao, Khmer, Myanmar)
UNSPACED_CHARS = r"\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNSPACED = re.compile(f"[{UNSPACED_CHARS}]")
# a word: one character of an unspaced script, or a run of other word characters
_SCRIPT_WORD = re.compile(f"[{UNSPACED_CHARS}]|[^\\W{UNSPACED_CHARS}]+")


def script_words(text: str) -> list[str]:
    """Words for the quality statistics: each character of an unspaced script is a word (character
    n-grams then serve the repetition statistics, as multilingual filters do for such scripts)."""
    return _SCRIPT_WORD.findall(text)


_FULL_WIDTH_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]")


def unspaced_share(text: str) -> float:
    """Characters of unspaced scripts among the text's non-space characters."""
    return len(_UNSPACED.findall(text)) / max(len(text) - sum(ch.isspace() for ch in text), 1)


def count_words(text: str) -> int:
    """Words for statistics: whitespace-separated tokens, each character of an unspaced script counted
    as one (so a Chinese line is not one word)."""
    unspaced = len(_UNSPACED.findall(text))
    if not unspaced:
        return len(text.split())
    return unspaced + len(_UNSPACED.sub(" ", _FULL_WIDTH_PUNCTUATION.sub(" ", text)).split())


@dataclass
class Document:
    """One unit of text with its provenance (source file and position inside it)."""

    text: str
    id: str
    source: str
    meta: dict = field(default_factory=dict)

    def to_record(self) -> dict:
        return {"text": self.text, "id": self.id, "source": self.source, **self.meta}
