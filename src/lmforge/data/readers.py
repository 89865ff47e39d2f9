"""Streaming readers for local text, Markdown, JSONL(.gz) and Parquet files and folders.

A reader yields `Document`s one at a time, so memory does not grow with file size. Problems with
single records are counted in `ReadReport` (and skipped only when the user asked for it); problems
that make a whole input unusable raise `InputError` with the file and the fix.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.data.documents import Document
from lmforge.errors import InputError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
"""A long text file is cut into documents of about this size at blank lines, so that the
train/val split and deduplication work on books and dumps that come as a single file."""


@dataclass
class ReadReport:
    """What the readers saw: files, records, and the bad ones counted by reason."""

    files: int = 0
    skipped_files: dict[str, int] = field(default_factory=dict)
    bad_records: dict[str, int] = field(default_factory=dict)
    docs_with_invalid_utf8: int = 0
    docs_with_markup: int = 0
    """Wikipedia articles in which wikitext tokens survived rendering."""

    def count_bad(self, reason: str) -> None:
        self.bad_records[reason] = self.bad_records.get(reason, 0) + 1

    skipped_file_names: dict[str, list[str]] = field(default_factory=dict)
    """The first files skipped for each reason, so a folder's summary can name them."""

    def count_skipped_file(self, reason: str, path=None) -> None:
        self.skipped_files[reason] = self.skipped_files.get(reason, 0) + 1
        names = self.skipped_file_names.setdefault(reason, [])
        if path is not None and len(names) < 10:
            names.append(str(path))


@dataclass
class ReadOptions:
    text_field: str = "text"
    split: str = "train"
    skip_bad_records: bool = False
    doc_split: str = "auto"
    """How a text file is cut into documents: auto, blank-line, line, file or chars:N."""
    report: ReadReport = field(default_factory=ReadReport)


WIKI_SUFFIXES = (".xml", ".xml.bz2")
WARC_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz")
ARROW_SUFFIXES = (".arrow",)
ALL_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES + WIKI_SUFFIXES + WARC_SUFFIXES + ARROW_SUFFIXES
HUB_PREFIX = "hf:"


def _suffix_kind(path: Path) -> str | None:
    name = re.sub(r"#bytes=\d+-\d+$", "", path.name.lower())  # a part of a multistream dump
    kinds = (("jsonl", JSONL_SUFFIXES), ("parquet", PARQUET_SUFFIXES), ("text", TEXT_SUFFIXES),
             ("wiki", WIKI_SUFFIXES), ("warc", WARC_SUFFIXES), ("arrow", ARROW_SUFFIXES))
    for kind, suffixes in kinds:
        if name.endswith(suffixes):
            return kind
    if name.endswith(".gz") and name[:-3].endswith(TEXT_SUFFIXES):
        return "text"
    return None


def source_kind(source) -> str | None:
    """The reader a source needs: text, jsonl, parquet, wiki, warc, arrow or hub."""
    return "hub" if str(source).startswith(HUB_PREFIX) else _suffix_kind(Path(source))


def list_input_files(paths: list, ignored: dict[str, int] | None = None) -> list:
    """Expand files and folders into a sorted, de-duplicated list of readable files (hub ids pass through);
    files of other types found in folders are counted by suffix in `ignored`."""
    files: list = []
    for path in paths:
        if str(path).startswith(HUB_PREFIX):
            files.append(str(path))
            continue
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such file or directory; check the path.")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            files.extend(p for p in found if _suffix_kind(p))
            for other in (p for p in found if not _suffix_kind(p)):
                if ignored is not None:
                    suffix = other.suffix.lower() or other.name
                    ignored[suffix] = ignored.get(suffix, 0) + 1
        elif _suffix_kind(path) is None:
            raise InputError(f"{path}: unsupported file type; expected one of {', '.join(ALL_SUFFIXES)} "
                             "or hf:DATASET.")
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


GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class _RecodedLines:
    """A UTF-16 text file (with a byte-order mark) read as UTF-8 lines, so every reader sees UTF-8 bytes."""

    def __init__(self, raw):
        import io

        self.raw = raw
        self.text = io.TextIOWrapper(raw, encoding="utf-16", newline="")
        self.first = self.text.read(4096).encode("utf-8")   # what peek() shows the binary check

    def peek(self, size: int = 1) -> bytes:
        return self.first

    def __iter__(self):
        for line in _chain_text(self.first.decode("utf-8"), self.text):
            yield line.encode("utf-8")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.raw.close()


def _chain_text(first: str, rest) -> Iterator[str]:
    """Lines of `first` followed by the rest of a text stream, the line cut at their join mended."""
    lines = re.findall(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$", first)   # as the text stream cuts lines
    tail = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
    yield from lines
    for line in rest:
        if tail:
            line, tail = tail + line, ""
        yield line
    if tail:
        yield tail


def sniff_text_file(path: Path) -> tuple[bool, str]:
    """(gzip-compressed, encoding) of a text file from its first bytes, whatever its name says: a `.gz`
    name on plain text is read as plain text (as `ngram train` does), a UTF-16 file with a byte-order
    mark is decoded (said once on stderr); other files are read as UTF-8."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        head = gzip.GzipFile(fileobj=raw).read(2) if compressed else raw.read(2)
    if path.name.lower().endswith(".gz") and not compressed:
        print(f"lmforge: warning: {path}: named .gz but not gzip-compressed; read as plain text", file=sys.stderr)
    encoding = "utf-16" if head in UTF16_BOMS else "utf-8"
    if encoding == "utf-16":
        print(f"lmforge: warning: {path}: UTF-16 text (byte-order mark); decoded as UTF-16", file=sys.stderr)
    return compressed, encoding


def _open_binary(path: Path):
    """A text or JSONL file as binary UTF-8 lines (see sniff_text_file)."""
    compressed, encoding = sniff_text_file(path)
    raw = gzip.open(path, "rb") if compressed else open(path, "rb")
    return _RecodedLines(raw) if encoding == "utf-16" else raw


def _check_not_binary(path: Path, head: bytes) -> bool:
    """True when the file looks like text; NUL bytes mean a binary file (or UTF-16 without a byte-order mark)."""
    return b"\x00" not in head


def _bad_file(path: Path, reason: str, message: str, options: ReadOptions) -> None:
    if not options.skip_bad_records:
        raise InputError(message)
    options.report.count_skipped_file(reason, path)
    print(f"lmforge: warning: skipping {path}: {reason}", file=sys.stderr)


def doc_split_chars(mode: str) -> int | None:
    """N of a `chars:N` document split (None for the other modes or a malformed N)."""
    if mode.startswith("chars:") and mode[6:].isdigit() and int(mode[6:]) > 0:
        return int(mode[6:])
    return None


def _text_blocks(lines, mode: str) -> Iterator[str]:
    """Documents of a text file's lines by the --doc-split mode (blank lines separate blocks)."""
    limit = doc_split_chars(mode)
    buffer: list[str] = []
    size = 0
    for line in lines:
        blank = not line.strip()
        if mode == "line":
            if not blank:
                yield line
            continue
        if mode == "blank-line" and blank:
            if buffer:
                yield "".join(buffer)
            buffer, size = [], 0
            continue
        buffer.append(line)
        size += len(line)
        if limit is not None and size >= limit and blank:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer and "".join(buffer).strip():
        yield "".join(buffer)


def read_text_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    """A text/Markdown file cut into documents by `options.doc_split`."""
    with _open_binary(path) as handle:
        head = handle.peek(8192)[:8192] if hasattr(handle, "peek") else b""
        if not _check_not_binary(path, head):
            _bad_file(path, "binary_file", f"{path}: NUL bytes: a binary file, or UTF-16 text without a byte-order "
                      "mark (convert it: iconv -f UTF-16LE -t UTF-8); remove it from the input or pass "
                      "--skip-bad-records.", options)
            return

        def lines():
            offset = 0
            for raw_line in handle:
                yield _decode(raw_line, f"{path} line offset {offset}", options)
                offset += len(raw_line)

        mode = options.doc_split
        if mode == "auto":
            mode = auto_doc_split(path, head)
        meta = {"unit": "line"} if mode == "line" else {}
        for number, text in enumerate(_text_blocks(lines(), mode)):
            yield Document(text, f"{path.name}#{number}", str(path), dict(meta))


LINE_LAYOUT_MIN_LINES = 20   # lines in a file's head, none blank, that make it one sentence (document) a line


def auto_doc_split(path: Path, head: bytes) -> str:
    """`--doc-split auto`: a Markdown or reST file is one page; a plain text file whose head has no blank
    line among many lines holds one sentence (or document) a line, the layout KenLM and word2vec read,
    so each line is a document (else a large file would be one over-long document with no validation
    split); other text files are blocks between blank lines."""
    if path.name.lower().removesuffix(".gz").endswith((".md", ".markdown", ".rst")):
        return "file"
    lines = head.decode("utf-8", errors="replace").split("\n")[:-1]   # the last may be cut by the head's end
    if len(lines) >= LINE_LAYOUT_MIN_LINES and all(line.strip() for line in lines):
        return "line"
    return "blank-line"


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
                if options.skip_bad_records:
                    options.report.count_bad("missing_text_field")
                    continue
                keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise InputError(f"{where}: no field {options.text_field!r} (found {keys}); pass --text-field "
                                 "with the name of the text field, or --skip-bad-records to skip and count it.")
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
    _check_column(path, parquet.schema_arrow.names, options)
    batches = parquet.iter_batches(batch_size=1024, columns=[options.text_field])
    yield from _column_documents(path, batches, options)


def _check_column(path: Path, names: list[str], options: ReadOptions) -> None:
    if options.text_field not in names:
        raise InputError(f"{path}: no column {options.text_field!r} (found {names}); "
                         "pass --text-field with the name of the text column.")


def _column_documents(path: Path, batches, options: ReadOptions) -> Iterator[Document]:
    """One Document per row of the text column of Arrow record batches; non-strings are counted."""
    row = 0
    for batch in batches:
        for text in batch.column(options.text_field).to_pylist():
            if isinstance(text, str):
                yield Document(text, f"{path.name}:{row}", str(path), {"row": row})
            else:
                options.report.count_bad("text_not_a_string")
            row += 1


def read_arrow_file(path: Path, options: ReadOptions) -> Iterator[Document]:
    """An Arrow IPC file as written by Hugging Face `datasets` (stream format) or pyarrow (file format)."""
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
    except pa.ArrowInvalid:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
    _check_column(path, reader.schema.names, options)
    batches = reader if hasattr(reader, "__iter__") else (reader.get_batch(i) for i in range(reader.num_record_batches))
    yield from _column_documents(path, batches, options)


def read_hub(source: str, options: ReadOptions) -> Iterator[Document]:
    """`hf:NAME` or `hf:NAME:CONFIG`, streamed with `datasets` (needs the network)."""
    name, _, config = source[len(HUB_PREFIX):].partition(":")
    try:
        from datasets import load_dataset
    except ImportError:
        raise InputError(f"{source}: reading the Hugging Face hub needs `pip install 'lmforge[data]'`.") from None
    try:
        stream = iter(load_dataset(name, config or None, split=options.split, streaming=True))
        first = next(stream, None)
    except Exception as error:  # datasets raises many types when offline or when the id is wrong
        raise InputError(f"{source}: cannot load from the Hugging Face hub ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:100] if str(error) else 'no network?'}); offline, download "
                         "the dataset elsewhere and pass its local folder of Parquet/JSONL/Arrow files.") from None
    row = 0
    for record in _chain_first(first, stream):
        if options.text_field not in record:
            raise InputError(f"{source}: no field {options.text_field!r} (found {sorted(record)}); pass --text-field.")
        yield Document(record[options.text_field], f"{name}:{row}", source, {"row": row})
        row += 1


def _chain_first(first, rest):
    if first is not None:
        yield first
        yield from rest


def _reader_for(source):
    from lmforge.data.web import read_warc
    from lmforge.data.wikipedia import read_wikipedia_dump

    return {"text": read_text_file, "jsonl": read_jsonl_file, "parquet": read_parquet_file, "arrow": read_arrow_file,
            "wiki": read_wikipedia_dump, "warc": read_warc, "hub": read_hub}[source_kind(source)]


def read_file(path, options: ReadOptions) -> Iterator[Document]:
    """Dispatch on the file name. A truncated or corrupt compressed file keeps every record before the
    break and is reported with the count (it is only an error when nothing could be read)."""
    options.report.files += 1
    kept = 0
    try:
        for doc in _reader_for(path)(path if source_kind(path) == "hub" else Path(path), options):
            kept += 1
            yield doc
    except (EOFError, zlib.error, gzip.BadGzipFile, ET.ParseError) as error:
        _report_truncated(path, error, kept, options)
    except OSError as error:  # bz2 reports corrupt data as a plain OSError
        if "Invalid data stream" not in str(error) and "compressed" not in str(error).lower():
            raise
        _report_truncated(path, error, kept, options)


def _report_truncated(path, error: Exception, kept: int, options: ReadOptions) -> None:
    """A file whose complete records were kept lost only its tail (a bad record); one that gave nothing
    was skipped as a file."""
    if kept:
        options.report.count_bad("truncated_or_corrupt_tail")
    else:
        options.report.count_skipped_file("truncated_or_corrupt", path)
    print(f"lmforge: warning: {path}: truncated or corrupt ({str(error)[:80]}); kept the {kept} complete "
          "records before the break", file=sys.stderr)


def read_documents(files: list[Path], options: ReadOptions) -> Iterator[Document]:
    for path in files:
        yield from read_file(path, options)


def open_text(path: Path):
    """A text file for reading, gunzipped when its first bytes say it is gzip (whatever its name), UTF-8 or
    UTF-16 with a byte-order mark."""
    import io

    compressed, encoding = sniff_text_file(Path(path))
    raw = open(path, "rb")
    return io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if compressed else raw, encoding=encoding, newline="\n")


def iter_clean_texts(directory: Path, split: str, exact: bool = False):
    """Texts of one split of a `prepare` output, in file order (`exact`: `split` names one file)."""
    paths = [Path(directory) / split] if exact else sorted(Path(directory).glob(f"{split}-*.jsonl.gz"))
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)["text"]
