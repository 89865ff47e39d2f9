"""Phase 1 of prepare, one input at a time: read -> clean -> filter -> part file + dedup keys.

Each input (file or hub dataset) becomes `work/part-<index>.jsonl.gz` with its kept documents, what
phase 2 needs to know of each without parsing it again (`.docs.npy`: exact-duplicate key, split
fraction, bytes, words) and MinHash signatures (`.minhash.npy`), rejects under
`work/rejected/<reason>/`, and `part-<index>.json` with its counts, written last: an input whose
.json exists is finished, so a killed run resumes by skipping it."""

from __future__ import annotations

import gzip
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lmforge.artifacts import write_json
from lmforge.data import cleaning, quality
from lmforge.data.documents import Document, count_words
from lmforge.data.extras import require
from lmforge.data.minhash import MinHasher
from lmforge.data.pipeline import StepCounts, document_keys, keep_if, map_step, reject_by, run_pipeline
from lmforge.data.readers import ReadOptions, read_file, source_kind
from lmforge.data.writers import DocumentWriter

WORK_FORMAT_VERSION = 2  # a work/ folder of another version is not resumed
# per kept document, in part order: all phase 2 needs besides the line itself
DOC_FACTS = np.dtype([("key", "<u8"), ("split", "<f8"), ("bytes", "<i8"), ("words", "<i8")])


def part_name(index: int) -> str:
    return f"part-{index:06d}"


def uses_web_filters(config, source) -> bool:
    """Quality filters 'auto' means: on for web pages (WARC/WET), off for curated text."""
    return config.quality_filters == "on" or (config.quality_filters == "auto" and source_kind(source) == "warc")


def build_steps(config, source, languages: dict, pii: cleaning.PIIMasker | None,
                languages_kept: dict | None = None) -> list:
    web = uses_web_filters(config, source)
    if config.fix_unicode or web:
        require("ftfy", "Unicode repair (--fix-unicode, web quality filters)")
    if config.lang or web:
        require("py3langid", "language identification (--lang, web quality filters)")
    steps = []
    if config.fix_unicode or web:
        steps.append(map_step(cleaning.fix_unicode))
    steps += [map_step(cleaning.normalize_unicode), map_step(cleaning.clean_whitespace)]
    if web:
        steps.append(map_step(cleaning.remove_boilerplate_lines))
    if pii is not None:
        steps.append(map_step(pii))
    for enabled, fn in ((config.lowercase, cleaning.lowercase), (config.strip_symbols, cleaning.strip_symbols),
                        (config.remove_stopwords, cleaning.remove_stopwords)):
        if enabled:
            steps.append(map_step(fn))
    steps.append(keep_if(_long_enough(config.min_chars), reason="too_short"))
    steps.append(keep_if(lambda doc: len(doc.text) <= config.max_chars, reason="too_long"))
    if config.lang or web:
        steps.append(reject_by(_language_check(config, languages), "language"))
    if web:
        q = config.quality
        steps += [reject_by(lambda d: quality.gopher_repetition(d, q), "gopher_repetition"),
                  reject_by(lambda d: quality.gopher_quality(d, q), "gopher_quality"),
                  reject_by(lambda d: quality.c4_lines(d, q), "c4")]
    if (config.lang or web) and languages_kept is not None:  # per-language keep rates in the summary
        steps.append(map_step(lambda d: _count_language(d, languages_kept)))
    return steps


DEFAULT_MIN_CHARS = 32   # a document; a line document (one sentence) is kept unless empty


def _long_enough(min_chars: int | None):
    if min_chars is not None:
        return cleaning.min_chars(max(min_chars, 1))
    document, line = cleaning.min_chars(DEFAULT_MIN_CHARS), cleaning.min_chars(1)
    return lambda doc: (line if doc.meta.get("unit") == "line" else document)(doc)


def _count_language(doc: Document, counts: dict) -> Document:
    lang = doc.meta.get("lang", "?")
    counts[lang] = counts.get(lang, 0) + 1
    return doc


def _language_check(config, languages: dict):
    from lmforge.data.language import identify

    def check(doc: Document) -> str | None:
        lang, prob = identify(doc.text)
        doc.meta["lang"], doc.meta["lang_score"] = lang, round(prob, 4)
        languages[lang] = languages.get(lang, 0) + 1
        if config.lang and (lang != config.lang or prob < config.lang_threshold):
            return "language"
        return None

    return check


def process_input(index: int, source, config, work: Path) -> dict:
    """Run phase 1 for one input; returns (and writes) its counts."""
    started = time.perf_counter()
    name = part_name(index)
    options = ReadOptions(text_field=config.text_field, split=config.hub_split,
                          skip_bad_records=config.skip_bad_records, doc_split=config.doc_split)
    languages: dict[str, int] = {}
    languages_kept: dict[str, int] = {}
    pii = cleaning.PIIMasker() if config.mask_pii else None
    steps = build_steps(config, source, languages, pii, languages_kept)
    hasher = MinHasher(config.minhash) if config.near_dedup else None
    facts, signatures = [], []
    # temp names carry the pid: a worker orphaned by a killed run may still be writing its own
    tmp = work / f".{name}.jsonl.gz.{os.getpid()}.tmp"
    rejects = DocumentWriter(work / "rejected", subdirs=True, stem=name) if config.keep_rejected else None
    # level 1: a temporary copy of the kept text, read once by phase 2
    with gzip.GzipFile(tmp, "wb", compresslevel=1, mtime=0) as out:
        def keep(doc: Document) -> None:
            out.write(json.dumps(doc.to_record(), ensure_ascii=False).encode("utf-8") + b"\n")
            facts.append((*document_keys(doc.text), len(doc.text.encode("utf-8")), count_words(doc.text)))
            if hasher is not None:
                signatures.append(hasher.signature(doc.text))

        def reject(reason: str, doc: Document) -> None:
            if rejects is not None:
                rejects.write(reason, doc)

        try:
            counts = run_pipeline(read_file(source, options), steps, keep, reject, StepCounts())
        except BaseException:   # a bad input stops the run: leave no half-written part behind
            tmp.unlink(missing_ok=True)
            raise
    if rejects is not None:
        rejects.close()
    _save_array(work / f"{name}.docs.npy", np.array(facts, dtype=DOC_FACTS))
    if hasher is not None:
        matrix = np.array(signatures, dtype=np.uint32).reshape(len(facts), config.minhash.num_perm)
        _save_array(work / f"{name}.minhash.npy", matrix)
    os.replace(tmp, work / f"{name}.jsonl.gz")
    result = {"index": index, "source": str(source), **asdict(counts), "files": options.report.files,
              "skipped_files": options.report.skipped_files, "bad_records": options.report.bad_records,
              "skipped_file_names": options.report.skipped_file_names,
              "docs_with_invalid_utf8": options.report.docs_with_invalid_utf8,
              "docs_with_markup": options.report.docs_with_markup, "languages": languages,
              "languages_kept": languages_kept,
              "pii_masked": pii.counts if pii else {}, "seconds": round(time.perf_counter() - started, 3)}
    write_json(work / f"{name}.json", result)  # written last: marks the part as finished
    return result


def _save_array(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def finished_parts(work: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in work.glob("part-*.json")}


def read_part_lines(work: Path, index: int):
    """The JSON lines of a finished part, in order, as bytes (newline included)."""
    with gzip.open(work / f"{part_name(index)}.jsonl.gz", "rb") as handle:
        yield from handle
