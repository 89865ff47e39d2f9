"""Common Crawl WARC (HTML responses -> main text) and WET (extracted text) files, streamed.

Only HTTP 200 responses with an HTML content type are read; truncated records, other record types
and pages without text are skipped and counted. The charset comes from the HTTP header when it
decodes cleanly, else from resiliparse's detector."""

from __future__ import annotations

import io
import os
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

from lmforge.data.documents import Document
from lmforge.data.extras import require

HTML_TYPES = ("text/html", "application/xhtml+xml")
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)


def decode_html(body: bytes, content_type: str) -> str:
    """Header charset if it decodes without errors, else the detected encoding (with replacement)."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    match = _CHARSET.search(content_type or "")
    if match:
        try:
            return body.decode(match.group(1))
        except (LookupError, UnicodeDecodeError):
            pass  # wrong or unknown charset in the header: detect instead
    return bytes_to_str(body, detect_encoding(body))


def html_to_text(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True, alt_texts=False, links=False, form_fields=False,
                              noscript=False, comments=False)


def _response_document(record, path: Path, report) -> Document | None:
    headers = record.rec_headers
    if headers.get_header("WARC-Truncated"):
        report.count_bad("warc_truncated_record")
        return None
    http = record.http_headers
    if http is None or http.get_statuscode() != "200":
        report.count_bad("warc_not_200")
        return None
    content_type = http.get_header("Content-Type") or ""
    if not content_type.lower().startswith(HTML_TYPES):
        report.count_bad("warc_not_html")
        return None
    body = record.content_stream().read()
    text = html_to_text(decode_html(body, content_type))
    if not text.strip():
        report.count_bad("warc_no_text")
        return None
    url = headers.get_header("WARC-Target-URI") or ""
    return Document(text, headers.get_header("WARC-Record-ID") or url, str(path), {"url": url})


def read_warc(path: Path, options) -> Iterator[Document]:
    """WARC `response` records (HTML) or WET `conversion` records (text). Common Crawl files hold one
    gzip member per record, and each member is parsed on its own: an unreadable record costs only
    itself. A plain, uncompressed WARC resynchronises on the next `WARC/1.x` header after an
    unreadable record, and the skipped bytes are counted."""
    require("warcio", f"{path}: reading WARC files")
    require("resiliparse", f"{path}: extracting text from HTML")
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
        handle.seek(0)
        if not gzipped:
            yield from _read_plain(handle, path, options.report)
            return
        for offset, member in _gzip_members(handle, options.report, path):
            yield from _read_records(io.BytesIO(member), offset, path, options.report, stop_on_error=False)


def _read_records(stream, base: int, path: Path, report, stop_on_error: bool,
                  ends: list[int] | None = None) -> Iterator[Document]:
    """Documents of the records in `stream` (which starts at byte `base` of the file); the end of each
    record read is appended to `ends`. An unreadable record is counted and ends the stream."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    iterator = ArchiveIterator(stream)
    try:
        for record in iterator:
            doc = _record_document(record, path, report)
            offset = base + iterator.get_record_offset()  # (reads the record to its end)
            if ends is not None:
                ends.append(offset + iterator.get_record_length())
            if doc is not None:
                doc.meta["offset"] = offset
                yield doc
    except ArchiveLoadFailed as error:
        report.count_bad("warc_bad_record")
        if ends is not None:
            ends.append(-1)  # marks the failure, after the end of the last good record
        rest = "resynchronising on the next record" if stop_on_error else "skipped it"
        good = [end for end in ends or [] if end >= 0]
        print(f"lmforge: warning: {path}: unreadable WARC record at byte {good[-1] if good else base} "
              f"({str(error).splitlines()[0][:100]}); {rest}", file=sys.stderr)


def _read_plain(handle, path: Path, report) -> Iterator[Document]:
    """An uncompressed WARC: read records until one is unreadable, then look for the next line that
    starts a record (`WARC/1.`) and go on from there; the bytes in between are counted as skipped."""
    position = 0
    while True:
        handle.seek(position)
        ends: list[int] = []  # warcio's offsets on a plain file are absolute
        yield from _read_records(handle, 0, path, report, stop_on_error=True, ends=ends)
        if not ends or ends[-1] != -1:
            return  # read to the end
        good = [end for end in ends if end >= 0]
        start = _skip_newlines(handle, good[-1] if good else position)   # the bad record's first byte
        next_record = _next_header(handle, start + 1)
        end = next_record if next_record is not None else os.fstat(handle.fileno()).st_size
        report.bad_records["warc_skipped_bytes"] = report.bad_records.get("warc_skipped_bytes", 0) + end - start
        if next_record is None:
            return
        position = next_record


def _skip_newlines(handle, offset: int) -> int:
    handle.seek(offset)
    while handle.read(1) in (b"\r", b"\n"):
        offset += 1
    return offset


def _next_header(handle, offset: int, block: int = 1 << 20) -> int | None:
    """Offset of the next line starting with `WARC/1.` at or after `offset`, read in blocks."""
    marker = b"\nWARC/1."
    handle.seek(offset - 1)
    carried, base = b"", offset - 1
    while chunk := handle.read(block):
        data = carried + chunk
        found = data.find(marker)
        if found >= 0:
            return base + found + 1
        carried = data[-(len(marker) - 1):]
        base += len(data) - len(carried)
    return None


def _gzip_members(handle, report, path: Path, block: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """(offset, decompressed bytes) of each gzip member. A corrupt member is counted and skipped by
    resynchronising at the next gzip header; a file that ends inside a member raises EOFError."""
    offset, consumed = 0, 0
    decompressor, parts, pending = zlib.decompressobj(31), [], b""
    while True:
        data = pending or handle.read(block)
        pending = b""
        if not data:
            if parts or consumed > offset:
                raise EOFError(f"file ends inside the gzip member at byte {offset}")
            return
        try:
            parts.append(decompressor.decompress(data))
        except zlib.error:
            report.count_bad("warc_corrupt_member")
            print(f"lmforge: warning: {path}: corrupt gzip member at byte {offset}; skipped it", file=sys.stderr)
            handle.seek(offset + 1)
            rest = handle.read()
            found = rest.find(b"\x1f\x8b\x08")
            if found < 0:
                return
            offset = consumed = offset + 1 + found
            handle.seek(offset)
            decompressor, parts = zlib.decompressobj(31), []
            continue
        consumed += len(data) - len(decompressor.unused_data)
        if decompressor.eof:
            yield offset, b"".join(parts)
            pending = decompressor.unused_data
            offset = consumed
            decompressor, parts = zlib.decompressobj(31), []


def _record_document(record, path: Path, report) -> Document | None:
    kind = record.rec_type
    if kind == "response":
        return _response_document(record, path, report)
    if kind == "conversion":
        text = record.content_stream().read().decode("utf-8", errors="replace")
        url = record.rec_headers.get_header("WARC-Target-URI") or ""
        if not text.strip():
            report.count_bad("warc_no_text")
            return None
        return Document(text, url, str(path), {"url": url})
    return None  # warcinfo, request, metadata: not documents
