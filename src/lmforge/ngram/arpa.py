"""ARPA back-off language model files, the text format every n-gram toolkit reads and writes.

    \\data\\
    ngram 1=3
    ...
    \\1-grams:
    -1.2345<TAB>word<TAB>-0.3010      (log10 p, the n-gram, log10 backoff; the highest order has none)
    ...
    \\end\\

Values are written as the shortest decimal that reads back as the same float32, so export -> import is
exact. Reading validates what a damaged file gets wrong: a missing section or \\end\\ (truncation), a
section whose line count disagrees with the header, an n-gram whose prefix is absent.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from lmforge.artifacts import atomic_write_bytes
from lmforge.data.readers import open_text
from lmforge.errors import InputError
from lmforge.ngram.tables import NO_PROB, NgramTables
from lmforge.tokenization.words import SPECIAL_WORDS, UNK


def write_arpa(tables: NgramTables, path: Path) -> None:
    """The model as an ARPA file (gzip-compressed when the name ends in .gz), written atomically."""
    vocab = np.asarray(tables.vocab, dtype=object)
    out = io.StringIO()
    out.write("\\data\\\n")
    for n, count in enumerate(tables.counts(), start=1):
        out.write(f"ngram {n}={count}\n")
    for n in range(1, tables.order + 1):
        out.write(f"\n\\{n}-grams:\n")
        rows = tables.rows(n)
        words = vocab[rows[:, 0]]
        for col in range(1, n):
            words = words + " " + vocab[rows[:, col]]
        logp = tables.logp[n - 1].astype(str)
        if n < tables.order:
            lines = logp.astype(object) + "\t" + words + "\t" + tables.backoff[n - 1].astype(str).astype(object)
        else:
            lines = logp.astype(object) + "\t" + words
        out.write("\n".join(lines.tolist()))
        out.write("\n")
    out.write("\n\\end\\\n")
    payload = out.getvalue().encode("utf-8")
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    atomic_write_bytes(Path(path), payload)


def _header(handle, path: Path) -> list[int]:
    counts: list[int] = []
    for line in handle:
        line = line.strip()
        if not line or line == "\\data\\":
            continue
        if line.startswith("ngram "):
            try:
                n, count = line[6:].split("=")
                counts.append(int(count))
                if int(n) != len(counts):
                    raise ValueError
            except ValueError:
                raise InputError(f"{path}: malformed ARPA header line {line!r}; expected 'ngram N=COUNT'.") from None
            continue
        if line == "\\1-grams:" and counts:
            return counts
        raise InputError(f"{path}: not an ARPA file (expected \\data\\ and 'ngram N=COUNT' lines, got {line[:60]!r}).")
    raise InputError(f"{path}: truncated ARPA file: it ends inside the header.")


def read_arpa(path: Path) -> NgramTables:
    """Any ARPA file -> tables (words get ids <unk> <s> </s> first, then file order)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: ARPA file not found.")
    with open_text(path) as handle:
        try:
            counts = _header(handle, path)
            sections = [_section(handle, path, n, counts[n - 1], n == len(counts)) for n in range(1, len(counts) + 1)]
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
            raise InputError(f"{path}: unreadable ARPA file ({error}); it is damaged or truncated.") from None
    return _build(sections, path)


def _section(handle, path: Path, n: int, expected: int, last: bool):
    words, logp, backoff = [], np.empty(expected, dtype=np.float32), np.zeros(expected, dtype=np.float32)
    for line in handle:
        line = line.strip()
        if not line:
            continue
        if line.startswith("\\"):
            if len(words) != expected:
                raise InputError(f"{path}: the header says {expected} {n}-grams but the section has {len(words)}; "
                                 "the file is damaged (or its header was edited).")
            if line != (f"\\{n + 1}-grams:" if not last else "\\end\\"):
                raise InputError(f"{path}: expected the \\{n + 1}-grams: section, found {line!r}.")
            return words, logp, backoff, line == "\\end\\"
        fields = line.split()
        if len(fields) not in (n + 1, n + 2) or len(words) >= expected:
            raise InputError(f"{path}: bad {n}-gram line {line[:80]!r} (expected 'logprob w1..w{n} [backoff]', "
                             f"{expected} of them).")
        try:
            logp[len(words)] = float(fields[0])
            if len(fields) == n + 2:
                backoff[len(words)] = float(fields[-1])
        except ValueError:
            raise InputError(f"{path}: bad number in {n}-gram line {line[:80]!r}.") from None
        words.append(fields[1:n + 1])
    raise InputError(f"{path}: truncated ARPA file: it ends inside the {n}-grams section "
                     f"({len(words)} of {expected} lines) without \\end\\.")


def _build(sections, path: Path) -> NgramTables:
    if not sections[-1][3]:
        raise InputError(f"{path}: truncated ARPA file: no \\end\\ line.")
    unigram_words = [w[0] for w in sections[0][0]]
    vocab = list(SPECIAL_WORDS) + [w for w in unigram_words if w not in SPECIAL_WORDS]
    index = {w: i for i, w in enumerate(vocab)}
    V = len(vocab)
    order1 = np.array([index[w] for w in unigram_words], dtype=np.int64)
    logp1 = np.full(V, NO_PROB, dtype=np.float32)
    backoff1 = np.zeros(V, dtype=np.float32)
    logp1[order1], backoff1[order1] = sections[0][1], sections[0][2]
    if UNK not in unigram_words:   # some toolkits leave <unk> out: it is then never predicted
        logp1[index[UNK]] = NO_PROB
    keys, logp, backoff = [np.arange(V, dtype=np.uint64)], [logp1], [backoff1]
    for n, (words, lp, bo, _) in enumerate(sections[1:], start=2):
        try:
            rows = np.array([[index[w] for w in gram] for gram in words], dtype=np.int64).reshape(len(words), n)
        except KeyError as missing:
            raise InputError(f"{path}: the {n}-grams use the word {missing} that has no unigram entry.") from None
        order = np.lexsort(rows.T[::-1])
        rows, lp, bo = rows[order], lp[order], bo[order]
        prefix = rows[:, 0]
        for col in range(1, n - 1):
            wanted = (prefix * V + rows[:, col]).astype(np.uint64)
            at = np.minimum(np.searchsorted(keys[col], wanted), max(len(keys[col]) - 1, 0))
            if len(wanted) and (len(keys[col]) == 0 or np.any(keys[col][at] != wanted)):
                raise InputError(f"{path}: some {n}-grams have no {col + 1}-gram prefix entry; the model is not a "
                                 "valid back-off model (every n-gram's context must be listed).")
            prefix = at.astype(np.int64)
        keys.append((prefix * V + rows[:, -1]).astype(np.uint64))
        logp.append(lp)
        backoff.append(bo)
    return NgramTables(vocab, keys, logp, backoff, {"imported_from": str(path)})
