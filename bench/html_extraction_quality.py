"""HTML -> text quality on ../shared/data/html_pages_warc: how much of each page's own reference text
(`reference_rst`) the extracted text recovers (token recall) and how much it adds (1 - precision),
for lmforge's WARC reader + web cleaning, trafilatura and resiliparse on their own.
    python bench/html_extraction_quality.py
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import Counter
from pathlib import Path

from common import machine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "html_pages_warc"
TOKEN = re.compile(r"\w+")


def tokens(text: str) -> Counter:
    return Counter(TOKEN.findall((text or "").lower()))


def pages():
    """(url, html, reference) for every page that has a reference text."""
    from warcio.archiveiterator import ArchiveIterator

    from lmforge.data.web import decode_html

    references = {}
    for path in sorted(DATA.glob("*.reference.jsonl.gz")):
        for line in gzip.open(path, "rt"):
            record = json.loads(line)
            if record.get("reference_rst"):
                references[record["url"]] = record["reference_rst"]
    for path in sorted(DATA.glob("*.warc.gz")):
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle):
                url = record.rec_headers.get_header("WARC-Target-URI")
                if record.rec_type == "response" and url in references:
                    body = record.content_stream().read()
                    yield url, decode_html(body, record.http_headers.get_header("Content-Type") or ""), references[url]


def lmforge_extract(html: str) -> str:
    from lmforge.data.cleaning import clean_whitespace, normalize_unicode, remove_boilerplate_lines
    from lmforge.data.documents import Document
    from lmforge.data.web import html_to_text

    doc = Document(html_to_text(html), "x", "x")
    for step in (normalize_unicode, clean_whitespace, remove_boilerplate_lines):
        doc = step(doc)
    return doc.text


def extractors():
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    return {
        "lmforge": lmforge_extract,
        "trafilatura": lambda html: trafilatura.extract(html) or "",
        "trafilatura_precision": lambda html: trafilatura.extract(html, favor_precision=True) or "",
        "resiliparse": lambda html: extract_plain_text(html),
        "resiliparse_main_content": lambda html: extract_plain_text(html, main_content=True),
    }


def main() -> None:
    print(f"# {machine()}")
    data = list(pages())
    results = {}
    for name, extract in extractors().items():
        overlap = extracted = reference = 0
        start = time.perf_counter()
        for _, html, ref in data:
            got, want = tokens(extract(html)), tokens(ref)
            overlap += sum((got & want).values())
            extracted += sum(got.values())
            reference += sum(want.values())
        seconds = time.perf_counter() - start
        precision, recall = overlap / max(extracted, 1), overlap / max(reference, 1)
        results[name] = {"precision": round(precision, 3), "recall": round(recall, 3),
                         "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 3),
                         "pages_per_s": round(len(data) / seconds, 1)}
        print(json.dumps({name: results[name]}), flush=True)
    print(json.dumps({"pages": len(data)}))


if __name__ == "__main__":
    main()
