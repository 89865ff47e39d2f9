"""Document cleaners (text -> text) and filters (predicates named for what they keep)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from lmforge.data.documents import Document

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_ANY_WHITESPACE = re.compile(r"\s+")


def normalize_unicode(doc: Document) -> Document:
    """NFC, so that the same visible text always has the same code points (and the same tokens)."""
    doc.text = unicodedata.normalize("NFC", doc.text)
    return doc


def clean_whitespace(doc: Document) -> Document:
    """Unix newlines, no control characters, no trailing spaces, at most one blank line in a row."""
    text = doc.text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _MANY_BLANK_LINES.sub("\n\n", text)
    text = _INNER_SPACES.sub(" ", text)
    doc.text = text.strip()
    return doc


def min_chars(n: int) -> Callable[[Document], bool]:
    """Keeps documents with at least `n` characters."""
    def has_min_chars(doc: Document) -> bool:
        return len(doc.text) >= n
    return has_min_chars


def dedup_key(text: str) -> str:
    """The text compared for exact duplicates: case-folded, whitespace-collapsed."""
    return _ANY_WHITESPACE.sub(" ", text.casefold()).strip()
