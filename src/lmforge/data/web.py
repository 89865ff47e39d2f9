"""Common Crawl WARC (HTML responses -> main text) and WET (extracted text) files, streamed.

Only HTTP 200 responses with an HTML content type are read; truncated records, other record types
and pages without text are skipped and counted. The charset comes from the HTTP header when it
decodes cleanly, else from resiliparse's detector."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

from lmforge.data.documents import Document

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
    """WARC `response` records (HTML) or WET `conversion` records (text)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    report = options.report
    with open(path, "rb") as handle:
        iterator = ArchiveIterator(handle)
        try:
            for record in iterator:
                kind = record.rec_type
                if kind == "response":
                    doc = _response_document(record, path, report)
                elif kind == "conversion":
                    text = record.content_stream().read().decode("utf-8", errors="replace")
                    url = record.rec_headers.get_header("WARC-Target-URI") or ""
                    doc = Document(text, url, str(path), {"url": url}) if text.strip() else None
                    if doc is None:
                        report.count_bad("warc_no_text")
                else:
                    continue  # warcinfo, request, metadata: not documents
                if doc is not None:
                    doc.meta["offset"] = iterator.get_record_offset()
                    yield doc
        except ArchiveLoadFailed as error:
            report.count_bad("warc_bad_record")
            print(f"lmforge: warning: {path}: unreadable WARC record ({str(error).splitlines()[0][:120]}); "
                  "kept the records before it, skipped the rest of the file", file=sys.stderr)
