"""Streaming readers for local text, Markdown, JSONL(.gz) and Parquet files and folders.

A reader yields `Document`s one at a time, so memory does not grow with file size. Problems with
single records are counted in `ReadReport` (and skipped only when the user asked for it); problems
that make a whole input unusable raise `InputError` with the file and the fix.
"""

from __future__ import annotations

import gzip
import json
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.data.documents import Document
from lmforge.errors import InputError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
TEXT_CHUNK_CHARS = 64_000
"""A long text file is cut into documents of about this size at blank lines, so that the
train/val split and deduplication work on books and dumps that come as a single file."""


@dataclass
class ReadReport:
    """What the readers saw: files, records, and the bad ones counted by reason."""

    files: int = 0
    skipped_files: dict[str, int] = field(default_factory=dict)
    bad_records: dict[str, int] = field(default_factory=dict)
    docs_with_invalid_utf8: int = 0

    def count_bad(self, reason: str) -> None:
        self.bad_records[reason] = self.bad_records.get(reason, 0) + 1


@dataclass
class ReadOptions:
    text_field: str = "text"
    skip_bad_records: bool = False
    report: ReadReport = field(default_factory=ReadReport)


def _suffix_kind(path: Path) -> str | None:
    name = path.name.lower()
    for kind, suffixes in (("jsonl", JSONL_SUFFIXES), ("parquet", PARQUET_SUFFIXES), ("text", TEXT_SUFFIXES)):
        if name.endswith(suffixes):
            return kind
    if name.endswith(".gz") and name[:-3].endswith(TEXT_SUFFIXES):
        return "text"
    return None


def list_input_files(paths: list[Path]) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of readable files."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or directory; check the path.")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _suffix_kind(p))
            files.extend(found)
        elif _suffix_kind(path) is None:
            raise InputError(f"{path}: unsupported file type; expected one of "
                             f"{', '.join(TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES)}.")
        else:
            files.append(path)
    return list(dict.fromkeys(files))


def _decode(raw: bytes, where: str, options: ReadOptions) -> str:
    """UTF-8 decode; invalid bytes become U+FFFD, counted, and reported once with their offset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        options.report.docs_with_invalid_utf8 += 1
        if options.report.docs_with_invalid_utf8 <= 3:
            print(f"lmforge: warning: {where}: invalid UTF-8 at byte {error.start}; "
                  "replaced with U+FFFD (counted in stats.json)", file=sys.stderr)
        return raw.decode("utf-8", errors="replace")


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _check_not_binary(path: Path, head: bytes) -> bool:
    """True when the file looks like text; NUL bytes mean a binary file."""
    return b"\x00" not in head


def _bad_file(path: Path, reason: str, message: str, options: ReadOptions) -> None:
    if not options.skip_bad_records:
        raise InputError(message)
    options.report.skipped_files[reason] = options.report.skipped_files.get(reason, 0) + 1
    print(f"lmforge: warning: skipping {path}: {reason}", file=sys.stderr)


def read_text_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    """A text/Markdown file, cut at blank lines into documents of about TEXT_CHUNK_CHARS."""
    with _open_binary(path) as handle:
        head = handle.peek(8192)[:8192] if hasattr(handle, "peek") else b""
        if not _check_not_binary(path, head):
            _bad_file(path, "binary_file", f"{path}: looks like a binary file (NUL bytes), not text; "
                      "remove it from the input or pass --skip-bad-records.", options)
            return
        buffer: list[str] = []
        size, chunk, offset = 0, 0, 0
        for raw_line in handle:
            line = _decode(raw_line, f"{path} line offset {offset}", options)
            offset += len(raw_line)
            buffer.append(line)
            size += len(line)
            if size >= TEXT_CHUNK_CHARS and not line.strip():
                yield Document("".join(buffer), f"{path.name}#{chunk}", str(path))
                buffer, size, chunk = [], 0, chunk + 1
        if buffer:
            yield Document("".join(buffer), f"{path.name}#{chunk}", str(path))


def read_jsonl_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    """One JSON object per line; the text is in `options.text_field`."""
    with _open_binary(path) as handle:
        for line_no, raw_line in enumerate(handle, start=1):
            if not raw_line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(_decode(raw_line, where, options))
            except json.JSONDecodeError as error:
                if not options.skip_bad_records:
                    raise InputError(f"{where}: malformed JSON ({error.msg}); fix the line or pass "
                                     "--skip-bad-records to skip and count such lines.") from None
                options.report.count_bad("malformed_json")
                continue
            if not isinstance(record, dict) or options.text_field not in record:
                keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise InputError(f"{where}: no field {options.text_field!r} (found {keys}); "
                                 "pass --text-field with the name of the text field.")
            text = record[options.text_field]
            if not isinstance(text, str):
                options.report.count_bad("text_not_a_string")
                continue
            yield Document(text, str(record.get("id", f"{path.name}:{line_no}")), str(path),
                           {"line": line_no})


def read_parquet_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    """A Parquet file read in record batches of the text column only."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for damaged files
        raise InputError(f"{path}: not a readable Parquet file ({error}).") from None
    names = parquet.schema_arrow.names
    if options.text_field not in names:
        raise InputError(f"{path}: no column {options.text_field!r} (found {names}); "
                         "pass --text-field with the name of the text column.")
    row = 0
    for batch in parquet.iter_batches(batch_size=1024, columns=[options.text_field]):
        for text in batch.column(0).to_pylist():
            if isinstance(text, str):
                yield Document(text, f"{path.name}:{row}", str(path), {"row": row})
            else:
                options.report.count_bad("text_not_a_string")
            row += 1


READERS: dict[str, Callable[[Path, ReadOptions], Iterator[Document]]] = {
    "text": read_text_file,
    "jsonl": read_jsonl_file,
    "parquet": read_parquet_file,
}


def read_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    """Dispatch on the file name; a truncated .gz keeps every record before the break."""
    options.report.files += 1
    try:
        yield from READERS[_suffix_kind(path)](path, options)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        _bad_file(path, "truncated_or_corrupt", f"{path}: truncated or corrupt compressed file ({error}); "
                  "re-download it or pass --skip-bad-records to keep the records before the break.", options)


def read_documents(files: list[Path], options: ReadOptions) -> Iterator[Document]:
    for path in files:
        yield from read_file(path, options)
