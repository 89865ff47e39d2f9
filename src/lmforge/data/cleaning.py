"""Document cleaners (text -> text) and filters (predicates named for what they keep)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from lmforge.data.documents import UNSPACED_CHARS, Document

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n\n\n+")
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


def normalize_unicode(doc: Document) -> Document:
    """NFC, so that the same visible text always has the same code points (and the same tokens)."""
    doc.text = unicodedata.normalize("NFC", doc.text)
    return doc


def clean_whitespace(doc: Document) -> Document:
    """Unix newlines, no control characters, no trailing spaces, at most one blank line in a row.
    Each regex runs only when a cheap substring test finds its target: most documents need none."""
    text = doc.text.replace("\u00a0", " ")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_SPACE.sub("\n", text)
    if "\n\n\n" in text:
        text = _MANY_BLANK_LINES.sub("\n\n", text)
    if "  " in text or "\t" in text:
        text = _INNER_SPACES.sub(" ", text)
    doc.text = text.strip()
    return doc


_UNSPACED_CHAR = re.compile(f"[{UNSPACED_CHARS}]")
UNSPACED_CHAR_WEIGHT = 3


def min_chars(n: int) -> Callable[[Document], bool]:
    """Keeps documents with at least `n` characters, a character of an unspaced script (Chinese,
    Japanese, Thai, ...) counting as 3: it carries about what three Latin letters and a space do, so a
    short Chinese review is not held to three times the content of an English one."""
    def has_min_chars(doc: Document) -> bool:
        if len(doc.text) >= n:
            return True
        return len(doc.text) + (UNSPACED_CHAR_WEIGHT - 1) * len(_UNSPACED_CHAR.findall(doc.text)) >= n
    return has_min_chars


def dedup_key(text: str) -> str:
    """The text compared for exact duplicates: case-folded, whitespace-collapsed."""
    return " ".join(text.casefold().split())  # str.split's whitespace is regex \s; 2x faster than re.sub


def fix_unicode(doc: Document) -> Document:
    """Repair mojibake and broken Unicode (ftfy), e.g. 'cafÃ©' -> 'café'. ftfy is slow, so it only
    runs on text that is not plain ASCII and that its own badness heuristic flags."""
    if doc.text.isascii():
        return doc
    import ftfy
    from ftfy.badness import is_bad

    if is_bad(doc.text):
        doc.text = ftfy.fix_text(doc.text)
    return doc


BOILERPLATE_LINE = re.compile(
    r"(cookie|accept all|privacy policy|terms of (use|service)|all rights reserved|sign in|log in|"
    r"subscribe|newsletter|skip to (main )?content|javascript (is )?(required|disabled)|share on|"
    r"follow us|back to top|click here|read more|powered by)", re.IGNORECASE)
_NAV_SEPARATORS = re.compile(r"\s[|»›·•]\s")


def is_boilerplate_line(line: str) -> bool:
    """Short lines that are site furniture: cookie banners, navigation bars, share/login prompts."""
    stripped = line.strip()
    if not stripped:
        return False
    words = len(stripped.split())
    if words <= 12 and BOILERPLATE_LINE.search(stripped):
        return True
    return words <= 20 and len(_NAV_SEPARATORS.findall(stripped)) >= 2  # "Home | News | About"


def remove_boilerplate_lines(doc: Document) -> Document:
    doc.text = "\n".join(line for line in doc.text.split("\n") if not is_boilerplate_line(line)).strip()
    return doc


PII_PATTERNS = {
    "email": (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "<EMAIL>"),
    "ip_address": (re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"), "<IP>"),
    "phone": (re.compile(r"(?<!\w)(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\w)"),
              "<PHONE>"),
}


class PIIMasker:
    """Replaces e-mail addresses, IPv4 addresses and phone numbers with placeholders; counts each."""

    __name__ = "mask_pii"

    def __init__(self):
        self.counts = {kind: 0 for kind in PII_PATTERNS}

    def __call__(self, doc: Document) -> Document:
        for kind, (pattern, placeholder) in PII_PATTERNS.items():
            doc.text, n = pattern.subn(placeholder, doc.text)
            self.counts[kind] += n
        return doc


def lowercase(doc: Document) -> Document:
    doc.text = doc.text.lower()
    return doc


_SYMBOLS = re.compile(r"[^\w\s]", re.UNICODE)


def strip_symbols(doc: Document) -> Document:
    """Remove punctuation and symbols (for bag-of-words and classic embedding models)."""
    doc.text = _MANY_SPACES.sub(" ", _SYMBOLS.sub(" ", doc.text)).strip()
    return doc


_MANY_SPACES = re.compile(r"[ \t]{2,}")


def remove_stopwords(doc: Document) -> Document:
    from lmforge.data.stopwords import ENGLISH_STOPWORDS

    doc.text = "\n".join(" ".join(w for w in line.split() if w.lower() not in ENGLISH_STOPWORDS)
                         for line in doc.text.split("\n"))
    return doc
