"""MediaWiki XML dumps (.xml or .xml.bz2), streamed: articles only, wikitext rendered to plain text.

Redirects, non-article namespaces and disambiguation pages are skipped (and counted); templates,
references, tables, files and categories are dropped; section headings are kept as text lines.
Memory stays flat: each <page> element is freed once read."""

from __future__ import annotations

import bz2
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from lmforge.data.documents import Document
from lmforge.data.extras import require
from lmforge.data.multistream import PartReader, part_of

SKIP_LINK_NAMESPACES = {"file", "image", "category", "media", "wikt", "wiktionary", "s", "commons"}
SKIP_TAGS = {"ref", "references", "table", "gallery", "math", "chem", "score", "timeline", "imagemap",
             "syntaxhighlight", "source", "templatedata", "graph", "mapframe", "maplink", "noinclude", "nowiki"}
SKIP_SECTIONS = {"references", "external links", "see also", "further reading", "notes", "bibliography",
                 "sources", "footnotes", "citations", "notes and references"}
DISAMBIGUATION = re.compile(r"\{\{\s*(disambiguation|disambig|dab|hndis|geodis|set index article|surname|"
                            r"given name)\b", re.IGNORECASE)
_LIST_MARKER = re.compile(r"^[*#:;]+\s*", re.MULTILINE)
_BLANKS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t]{2,}")


_PRESTRIP = re.compile(r"<!--.*?-->|<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.DOTALL | re.IGNORECASE)
_BRACES = re.compile(r"\{\{|\}\}|\{\||\|\}")
# {{lang|fr|Lutèce}}, {{lang-fr|Lutèce}}, {{transl|ar|...}}: the words are prose, keep them
_LANG = re.compile(r"\{\{\s*(?:lang(?:-[\w-]+)?|transl(?:iteration)?)\s*\|([^{}]*?)\}\}", re.IGNORECASE)
_STYLE = re.compile(r"'{2,}")
_FILE_LINK = re.compile(r"\[\[\s*(?:file|image|media)\s*:", re.IGNORECASE)
_BRACKETS = re.compile(r"\[\[|\]\]")
_MARKUP_LEFT = re.compile(r"''|\[\[|\]\]|\{\{|\}\}|<ref|\|thumb\|")


def _lang_text(match: re.Match) -> str:
    """The text argument of a language template (the last one that is not name=value)."""
    parts = re.split(r"\|(?![^\[]*\]\])", match.group(1))  # pipes inside [[link|label]] are not separators
    args = [a.strip() for a in parts if "=" not in a]
    return args[-1] if args else ""


def _unstyle(match: re.Match) -> str:
    """Bold/italic quote runs go; three or five quotes inside a word leave the apostrophe they hold
    (the Iliad's possessive, French l'Italie), as MediaWiki renders them."""
    text, start, end = match.string, match.start(), match.end()
    inside_word = start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
    return "'" if inside_word and len(match.group()) in (3, 5) else ""


def _strip_file_links(text: str) -> str:
    """Remove [[File:...]] / [[Image:...]] with everything nested in their captions, in one scan."""
    out, position = [], 0
    for match in _FILE_LINK.finditer(text):
        if match.start() < position:
            continue  # inside a file link already removed
        out.append(text[position:match.start()])
        depth, position = 0, len(text)
        for bracket in _BRACKETS.finditer(text, match.start()):
            depth += 1 if bracket.group() == "[[" else -1
            if depth == 0:
                position = bracket.end()
                break
    out.append(text[position:])
    return "".join(out)


def has_markup_left(text: str) -> bool:
    """Wikitext tokens that survived rendering (documents with any are counted in stats.json)."""
    return _MARKUP_LEFT.search(text) is not None


def _strip_templates_and_tables(text: str) -> str:
    """Remove {{templates}} and {| tables |}, nested, in one linear scan: they are most of the markup
    and none of the prose, and removing them first makes the full parse several times faster."""
    out, depth, start = [], 0, 0
    for match in _BRACES.finditer(text):
        token = match.group()
        if token in ("{{", "{|"):
            if depth == 0:
                out.append(text[start:match.start()])
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                start = match.end()
    if depth == 0:
        out.append(text[start:])
    return "".join(out)


_NODES = None


def _render(nodes) -> str:
    global _NODES
    if _NODES is None:
        import mwparserfromhell.nodes

        _NODES = mwparserfromhell.nodes
    n = _NODES
    out: list[str] = []
    for node in nodes:
        if isinstance(node, n.Text):
            out.append(str(node))
        elif isinstance(node, n.Wikilink):
            title = str(node.title).strip()
            if ":" in title and title.split(":", 1)[0].strip().lower() in SKIP_LINK_NAMESPACES | {""}:
                continue
            out.append(_render(node.text.nodes) if node.text else title)
        elif isinstance(node, n.ExternalLink):
            out.append(_render(node.title.nodes) if node.title else "")
        elif isinstance(node, n.Heading):
            out.append("\n\n" + _render(node.title.nodes).strip() + "\n")
        elif isinstance(node, n.Tag):
            tag = str(node.tag).lower().strip()
            if tag in SKIP_TAGS:
                continue
            if tag == "br":
                out.append("\n")
            elif node.contents is not None:
                out.append(_render(node.contents.nodes))
        elif isinstance(node, n.HTMLEntity):
            out.append(node.normalize())
        # templates, comments and template arguments carry no article prose
    return "".join(out)


def _drop_trailing_sections(text: str) -> str:
    """Cut reference-like sections ('References', 'External links', ...) and everything after them."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip().lower() in SKIP_SECTIONS and (i == 0 or not lines[i - 1].strip()):
            return "\n".join(lines[:i])
    return text


def wikitext_to_text(wikitext: str) -> str:
    import mwparserfromhell

    wikitext = _LANG.sub(_lang_text, _PRESTRIP.sub("", wikitext))
    wikitext = _STYLE.sub(_unstyle, _strip_file_links(_strip_templates_and_tables(wikitext)))
    text = _render(mwparserfromhell.parse(wikitext).nodes)
    text = _LIST_MARKER.sub("", text)
    text = _drop_trailing_sections(text)
    text = _SPACES.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _open(path: Path):
    part = part_of(path)
    if part is not None:  # one part of a multistream dump
        return PartReader(*part)
    return bz2.open(path, "rb") if path.name.lower().endswith(".bz2") else open(path, "rb")


def read_wikipedia_dump(path: Path, options) -> Iterator[Document]:
    """Yield one Document per article; counts skips in `options.report.bad_records`."""
    require("mwparserfromhell", f"{path}: reading Wikipedia dumps")
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
                try:
                    text = wikitext_to_text(wikitext)
                except Exception:  # mwparserfromhell gives up on some malformed markup
                    report.count_bad("wiki_malformed_wikitext")
                    continue
                report.docs_with_markup += has_markup_left(text)
                yield Document(text, f"{dump.name}:{page_id}", str(dump), {"title": title, "page_id": page_id})
