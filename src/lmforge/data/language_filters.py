"""Per-language thresholds of the Gopher quality and repetition filters, from FineWeb-2
(huggingface/fineweb-2, configs/{iso3}_{script}.yml), for the languages whose words we split the way
its statistics counted them: Chinese by jieba's segmentation, the spaced European languages by words
(keeping an elided article like French "l'" as one word, as its stop-word lists do). A document whose
identified language has no row here keeps the English Gopher/FineWeb defaults (characters count as
words in unspaced scripts; see quality.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from lmforge.data.documents import script_words
from lmforge.data.extras import require


@dataclass(frozen=True)
class LanguageThresholds:
    segmenter: str
    """jieba (Chinese), spaced (words and elided articles split by a regular expression) or script (the
    default rules: a character of an unspaced script is a word, see documents.script_words)."""
    min_mean_word_length: float
    max_mean_word_length: float
    max_non_alpha_words_ratio: float
    max_duplicate_line_fraction: float
    top_ngram_max: dict[int, float]
    """Largest share of characters in the most frequent word n-gram, n = 2..4."""
    dup_ngram_max: dict[int, float]
    """Largest share of characters in repeated word n-grams, n = 5..10."""
    stopwords: frozenset[str] = field(default_factory=frozenset)


def _ngrams(values: list[float], first: int) -> dict[int, float]:
    return {first + i: v for i, v in enumerate(values)}


def _row(segmenter, word_lengths, non_alpha, dup_lines, top, dup, stopwords) -> LanguageThresholds:
    return LanguageThresholds(segmenter, word_lengths[0], word_lengths[1], non_alpha, dup_lines, _ngrams(top, 2),
                              _ngrams(dup, 5), frozenset(stopwords.split()))


# ISO 639-1 code (what language identification gives) -> FineWeb-2's values for that language
FINEWEB2: dict[str, LanguageThresholds] = {
    "zh": _row("jieba", (1, 5), 0.735, 0.287, [0.256, 0.201, 0.171], [0.198, 0.182, 0.167, 0.154, 0.14, 0.127],
               "的 年 在 月 是 和 日 了 於 · 為 有 被 人 中 为 他 與 後 也 而 由"),
    "de": _row("spaced", (0, 15), 0.774, 0.263, [0.169, 0.153, 0.137], [0.141, 0.134, 0.126, 0.117, 0.108, 0.098],
               "der und die in von im den des mit das er dem als wurde für"),
    "fr": _row("spaced", (2, 11), 0.812, 0.264, [0.161, 0.149, 0.134], [0.15, 0.141, 0.131, 0.121, 0.111, 0.1],
               "de la le et à en l' des du les est d' un une il dans par au"),
    "es": _row("spaced", (4, 14), 0.825, 0.265, [0.077, 0.097, 0.112], [0.152, 0.137, 0.123, 0.114, 0.107, 0.099],
               "de la en el y a que del los se por un con una las su"),
    "it": _row("spaced", (3, 21), 0.807, 0.246, [0.198, 0.156, 0.133], [0.144, 0.136, 0.127, 0.118, 0.109, 0.1],
               "di e il la in a del che è della un per nel l' con da i una"),
    "pt": _row("spaced", (3, 13), 0.814, 0.325, [0.093, 0.117, 0.139], [0.19, 0.172, 0.154, 0.142, 0.131, 0.12],
               "de a e o em do da que um no uma com para na é foi"),
    "ru": _row("spaced", (3, 11), 0.713, 0.322, [0.184, 0.164, 0.146], [0.168, 0.156, 0.145, 0.133, 0.121, 0.109],
               "в и на с года по году из был к не от что за для его как а он также до после"),
}

# a word, with an elided article or pronoun ending in an apostrophe kept whole (l'eau -> l', eau)
_SPACED_WORD = re.compile(r"[^\W\d_]+['’]|[\w]+(?:[-'’][\w]+)*|[^\w\s]")


def thresholds_for(lang: str | None) -> LanguageThresholds | None:
    return FINEWEB2.get(lang or "")


@lru_cache(maxsize=4)   # the repetition and quality filters split the same document one after the other
def words_of(text: str, segmenter: str) -> tuple[str, ...]:
    """The document's words as the language's thresholds count them (punctuation marks are words too,
    as in the word tokenizers FineWeb-2 used; whitespace is not)."""
    if segmenter == "script":
        return tuple(script_words(text))
    if segmenter == "jieba":
        jieba = require("jieba", "Chinese word segmentation in the web quality filters")
        jieba.setLogLevel(60)   # its dictionary-loading chatter goes to stderr otherwise
        return tuple(w for w in jieba.lcut(text) if w.strip())
    return tuple(w.replace("’", "'") for w in _SPACED_WORD.findall(text))
