"""Perplexity (with and without OOV words, as KenLM's `query` reports it) and bits per byte of an n-gram
model on a split of a prepared dataset or on a text file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lmforge.errors import InputError
from lmforge.ngram.store import NgramRun
from lmforge.tokenization.words import corpus_lines

SCORE_LINES = 50_000   # lines scored per vectorised pass (bounds memory on large splits)


def evaluate_ngram(run: NgramRun, source: Path, split: str = "val", progress=None) -> dict:
    """Scores every line of the split: one <s> ... </s> sentence each; bytes are the UTF-8 bytes of the
    text, so bits per byte compare with any tokenizer's (an OOV word is priced as <unk>, and with
    --lowercase the case is free: bits per byte are then a bound below the true code length; a byte-level
    tokenizer as the words avoids both)."""
    log10_total = 0.0
    predicted = oov = 0
    known_log10 = 0.0
    text_bytes = 0
    lines: list[str] = []

    def score(batch: list[str]) -> None:
        nonlocal log10_total, predicted, oov, known_log10
        scored = run.model.score_sentences(run.splitter.sentences(batch))
        log10_total += float(scored.logp.sum())
        known_log10 += float(scored.logp[~scored.oov].sum())
        predicted += len(scored.logp)
        oov += int(scored.oov.sum())
        if progress is not None:
            progress(len(scored.logp))

    for text, size in _units(Path(source), split):
        text_bytes += size
        lines.extend(text.splitlines())
        if len(lines) >= SCORE_LINES:
            score(lines)
            lines = []
    score(lines)
    if predicted == 0:
        raise InputError(f"{source}: the {split} split has no text to score; evaluate another split or file.")
    nats = -log10_total * math.log(10)
    return {"family": "ngram", "objective": "counts", "split": split, "data": str(source),
            "val_loss": nats / predicted, "perplexity": float(10 ** (-log10_total / predicted)),
            "perplexity_excluding_oov": float(10 ** (-known_log10 / (predicted - oov))) if predicted > oov
            else float("nan"),
            "bits_per_byte": nats / math.log(2) / text_bytes, "bytes": text_bytes, "tokens": predicted,
            "oov_tokens": oov, "oov_rate": oov / predicted, "order": run.model.order}


def _units(source: Path, split: str):
    """(text, UTF-8 bytes) of each document of a dataset split (the bytes token shards count), or of each
    line of a text file (with its newline)."""
    if source.is_dir():
        from lmforge.data.readers import iter_clean_texts
        from lmforge.tokenization.corpus import clean_dir

        for text in iter_clean_texts(clean_dir(source), split):
            yield text, len(text.encode("utf-8"))
        return
    for line in corpus_lines(source, split):
        yield line, len(line.encode("utf-8")) + 1


def val_identity(source: Path) -> tuple[int, int] | None:
    """(bytes, documents) of a prepared dataset's val split, as token shards record them."""
    from lmforge.data.readers import iter_clean_texts
    from lmforge.tokenization.corpus import clean_dir

    source = Path(source)
    if not source.is_dir():
        return None
    sizes = [len(text.encode("utf-8")) for text in iter_clean_texts(clean_dir(source), "val")]
    return int(np.sum(sizes)) if sizes else 0, len(sizes)
