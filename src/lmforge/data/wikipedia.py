"""MediaWiki XML dumps (.xml or .xml.bz2), streamed: articles only, wikitext rendered to plain text.

Redirects, non-article namespaces and disambiguation pages are skipped (and counted); templates,
references, tables, files and categories are dropped; section headings are kept as text lines
(data/wikitext.py).
Memory stays flat: each <page> element is freed once read."""

from __future__ import annotations

import bz2
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from lmforge.data.documents import Document
from lmforge.data.multistream import PartReader, part_of
from lmforge.data.wikitext import has_markup_left, wikitext_to_text

DISAMBIGUATION = re.compile(r"\{\{\s*(disambiguation|disambig|dab|hndis|geodis|set index article|surname|"
                            r"given name)\b", re.IGNORECASE)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _open(path: Path):
    part = part_of(path)
    if part is not None:  # one part of a multistream dump
        return PartReader(*part)
    return bz2.open(path, "rb") if path.name.lower().endswith(".bz2") else open(path, "rb")


def read_wikipedia_dump(path: Path, options) -> Iterator[Document]:
    """Yield one Document per article; counts skips in `options.report.bad_records`."""
    report = options.report
    dump = part_of(path)[0] if part_of(path) else Path(path)  # ids and provenance name the dump itself
    with _open(path) as handle:
        context = ET.iterparse(handle, events=("start", "end"))
        _, root = next(context)
        for event, element in context:
            if event != "end" or _local(element.tag) != "page":
                continue
            page = {_local(child.tag): child for child in element}
            title = (page["title"].text or "") if "title" in page else ""
            namespace = page["ns"].text if "ns" in page else "0"
            revision = page.get("revision")
            text_element = None if revision is None else next(
                (c for c in revision if _local(c.tag) == "text"), None)
            wikitext = (text_element.text or "") if text_element is not None else ""
            page_id = page["id"].text if "id" in page else ""
            root.clear()  # free everything read so far
            if namespace != "0":
                report.count_bad("wiki_non_article_namespace")
            elif "redirect" in page or wikitext.lstrip().lower().startswith("#redirect"):
                report.count_bad("wiki_redirect")
            elif title.endswith("(disambiguation)") or DISAMBIGUATION.search(wikitext):
                report.count_bad("wiki_disambiguation")
            else:
                text = wikitext_to_text(wikitext)
                report.docs_with_markup += has_markup_left(text)
                yield Document(text, f"{dump.name}:{page_id}", str(dump), {"title": title, "page_id": page_id})
