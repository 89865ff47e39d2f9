"""Language identification with py3langid (its model ships inside the package: no download)."""

from __future__ import annotations

from functools import cache


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, max_chars: int = 4000) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's first `max_chars` characters."""
    lang, prob = _identifier().classify(text[:max_chars])
    return lang, float(prob)
