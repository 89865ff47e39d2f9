"""Quality filters with the published FineWeb / Gopher / C4 thresholds as defaults.

Each filter returns None to keep a document, or the reason it was rejected (counted by the runner
and used as the folder name under rejected/)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lmforge.data.documents import UNSPACED_CHARS, Document, count_words
from lmforge.data.language_filters import LanguageThresholds, thresholds_for, words_of
from lmforge.data.minhash import ngram_keys
from lmforge.data.stopwords import GOPHER_STOPWORDS

_BULLET = re.compile(r"^\s*[\u2022\u2023\u25e6\u2043\u2219*\-–]\s")
_TOKEN_WITH_LETTER = re.compile(r"\S*[^\W\d_]\S*")
_TERMINAL = (".", "!", "?", '"', "'", "”", "’", "…", "。", "！", "？", "」", "』")
_SENTENCE_END = re.compile(r"[.!?]+(\s|$)|[。！？]+")
_UNSPACED_CHAR = re.compile(f"[{UNSPACED_CHARS}]")
_PUNCTUATION = re.compile(r"[^\w\s]+")


@dataclass
class QualityConfig:
    min_words: int = 50
    """Gopher: keep documents with at least this many words."""
    max_words: int = 100_000
    """Gopher: and at most this many."""
    min_mean_word_length: float = 3.0
    """Gopher: mean word length (characters) at least this."""
    max_mean_word_length: float = 10.0
    """Gopher: and at most this."""
    max_symbol_word_ratio: float = 0.1
    """Gopher: at most this many '#' or '...' per word."""
    max_bullet_lines_ratio: float = 0.9
    """Gopher: at most this fraction of lines starting with a bullet."""
    max_ellipsis_lines_ratio: float = 0.3
    """Gopher: at most this fraction of lines ending with an ellipsis."""
    max_non_alpha_words_ratio: float = 0.8
    """Gopher: at least 1 - this fraction of words contain a letter (FineWeb's reading)."""
    min_stop_words: int = 2
    """Gopher: at least this many English stop words (the, be, to, of, and, that, have, with)."""
    max_duplicate_line_fraction: float = 0.3
    """Gopher repetition: duplicate lines as a fraction of lines."""
    max_duplicate_paragraph_fraction: float = 0.3
    """Gopher repetition: duplicate paragraphs as a fraction of paragraphs."""
    max_duplicate_line_char_fraction: float = 0.2
    """Gopher repetition: characters in duplicate lines as a fraction of all characters."""
    max_duplicate_paragraph_char_fraction: float = 0.2
    """Gopher repetition: characters in duplicate paragraphs as a fraction of all characters."""
    c4_min_words_per_line: int = 3
    """C4: lines with fewer words are removed."""
    c4_min_sentences: int = 5
    """C4: documents with fewer sentences are removed (0 disables)."""


# Gopher: fraction of characters in the most common n-gram (n = 2..4) / in duplicated n-grams (n = 5..10)
TOP_NGRAM_MAX = {2: 0.20, 3: 0.18, 4: 0.16}
DUP_NGRAM_MAX = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def rules_for(doc: Document, config: QualityConfig) -> LanguageThresholds:
    """FineWeb-2's row for the document's identified language, or the default Gopher rules of `config`."""
    return thresholds_for(doc.meta.get("lang")) or LanguageThresholds(
        "script", config.min_mean_word_length, config.max_mean_word_length, config.max_non_alpha_words_ratio,
        config.max_duplicate_line_fraction, TOP_NGRAM_MAX, DUP_NGRAM_MAX, GOPHER_STOPWORDS)


def gopher_quality(doc: Document, config: QualityConfig) -> str | None:
    """Gopher's quality rules. A document identified as a language with FineWeb-2 thresholds
    (language_filters.py) is split into that language's words and judged by its thresholds and stop
    words; otherwise a character of an unspaced script (Chinese, Japanese, Thai, ...) counts as a word,
    and for text mostly in such scripts the English-specific rules (mean word length, English stop
    words) do not apply."""
    rules = rules_for(doc, config)
    default = rules.segmenter == "script"
    words = words_of(doc.text, rules.segmenter)
    # FineWeb-2 counts words without the punctuation its word tokenizers split off
    content = words if default else [w for w in words if not _PUNCTUATION.fullmatch(w)]
    n = len(content)
    if n < config.min_words:
        return "gopher_short_document"
    if n > config.max_words:
        return "gopher_long_document"
    unspaced = default and len(_UNSPACED_CHAR.findall(doc.text)) / n > 0.5
    mean_length = sum(map(len, content)) / n
    if not unspaced and not rules.min_mean_word_length <= mean_length <= rules.max_mean_word_length:
        return "gopher_mean_word_length"
    symbols = doc.text.count("#") + doc.text.count("...") + doc.text.count("…")
    if symbols / n > config.max_symbol_word_ratio:
        return "gopher_symbol_word_ratio"
    lines = [line for line in doc.text.split("\n") if line.strip()]
    if lines and sum(bool(_BULLET.match(line)) for line in lines) / len(lines) > config.max_bullet_lines_ratio:
        return "gopher_bullet_lines"
    ellipsis = sum(line.rstrip().endswith(("...", "…")) for line in lines)
    if lines and ellipsis / len(lines) > config.max_ellipsis_lines_ratio:
        return "gopher_ellipsis_lines"
    if default:   # Gopher's whitespace tokens
        tokens, with_letter = len(doc.text.split()), len(_TOKEN_WITH_LETTER.findall(doc.text))
    else:
        tokens, with_letter = len(words), sum(any(c.isalpha() for c in w) for w in words)
    if tokens and (tokens - with_letter) / tokens > rules.max_non_alpha_words_ratio:
        return "gopher_non_alpha_words"
    if not unspaced and _count_stop_words(content, config.min_stop_words, rules.stopwords) < config.min_stop_words:
        return "gopher_stop_words"
    return None


def _count_stop_words(words, enough: int, stopwords) -> int:
    found = 0
    for word in words:
        if word.lower() in stopwords:
            found += 1
            if found >= enough:
                break
    return found


def _duplicates(parts: list[str]) -> tuple[int, int]:
    """(parts that repeat an earlier one, characters in those repeats)."""
    seen: set[str] = set()
    count = chars = 0
    for part in parts:
        if part in seen:
            count += 1
            chars += len(part)
        seen.add(part)
    return count, chars


def _window_sums(lengths: np.ndarray, n: int) -> np.ndarray:
    cumulative = np.concatenate([[0], np.cumsum(lengths)])
    return cumulative[n:] - cumulative[:-n]


def _top_ngram_chars(keys: np.ndarray, gram_chars: np.ndarray) -> int:
    """Characters covered by the most frequent n-gram, counting every occurrence; 0 when no n-gram repeats
    (a short text whose n-grams are all distinct is not repetitive, however large one n-gram's share of
    it: that is for the length rules)."""
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    best = int(np.argmax(counts))
    if counts[best] < 2:
        return 0
    return int(counts[best] * gram_chars[first[best]])


def _repeated_ngram_chars(keys: np.ndarray, gram_chars: np.ndarray, n: int) -> int:
    """Characters of n-grams seen earlier in the text, scanning left to right and jumping past each
    repeat (the non-overlapping count of Gopher as implemented in datatrove/FineWeb)."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    repeats = np.flatnonzero(first[inverse] < np.arange(len(keys)))
    chars, next_free = 0, 0
    for position in repeats.tolist():
        if position >= next_free:
            chars += int(gram_chars[position])
            next_free = position + n
    return chars


def gopher_repetition(doc: Document, config: QualityConfig) -> str | None:
    text = doc.text
    size = max(len(text), 1)
    paragraphs = re.split(r"\n{2,}", text.strip())
    count, chars = _duplicates(paragraphs)
    if count / len(paragraphs) > config.max_duplicate_paragraph_fraction:
        return "gopher_duplicate_paragraphs"
    if chars / size > config.max_duplicate_paragraph_char_fraction:
        return "gopher_duplicate_paragraph_chars"
    lines = re.split(r"\n+", text)
    count, chars = _duplicates(lines)
    rules = rules_for(doc, config)
    if count / len(lines) > rules.max_duplicate_line_fraction:
        return "gopher_duplicate_lines"
    if chars / size > config.max_duplicate_line_char_fraction:
        return "gopher_duplicate_line_chars"
    words = [w.lower() for w in words_of(text, rules.segmenter)]
    vocabulary: dict[str, int] = {}
    ids = np.array([vocabulary.setdefault(w, len(vocabulary)) for w in words], dtype=np.uint64)
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    for n, limit in rules.top_ngram_max.items():
        if len(words) >= n:
            gram_chars = _window_sums(lengths, n) + (n - 1)  # joined with spaces
            if _top_ngram_chars(ngram_keys(ids, n), gram_chars) / size > limit:
                return f"gopher_top_{n}gram"
    for n, limit in rules.dup_ngram_max.items():
        if len(words) >= n and _repeated_ngram_chars(ngram_keys(ids, n), _window_sums(lengths, n), n) / size > limit:
            return f"gopher_duplicated_{n}grams"
    return None


def c4_lines(doc: Document, config: QualityConfig) -> str | None:
    """C4: drop documents with 'lorem ipsum' or a curly bracket (code), drop lines without
    terminal punctuation, too few words or mentioning javascript; then require enough sentences."""
    lowered = doc.text.lower()
    if "lorem ipsum" in lowered:
        return "c4_lorem_ipsum"
    if "{" in doc.text:
        return "c4_curly_bracket"
    kept = []
    for line in doc.text.split("\n"):
        stripped = line.strip()
        if not stripped:
            if kept and kept[-1] != "":
                kept.append("")
            continue
        if not stripped.endswith(_TERMINAL) or stripped.endswith("..."):
            continue
        if count_words(stripped) < config.c4_min_words_per_line or "javascript" in stripped.lower():
            continue
        kept.append(stripped)
    text = "\n".join(kept).strip()
    if config.c4_min_sentences and len(_SENTENCE_END.findall(text)) < config.c4_min_sentences:
        return "c4_too_few_sentences"
    doc.text = text
    return None
