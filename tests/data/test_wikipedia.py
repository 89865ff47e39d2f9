"""MediaWiki dump reader on a small dump the test writes (articles, redirects, namespaces, truncation)."""

import bz2
import json

from lmforge.data.readers import ReadOptions, read_file
from lmforge.data.wikipedia import wikitext_to_text

ARTICLE = """'''Anarchism''' is a [[political philosophy|philosophy]]<ref>{{cite web|url=x}}</ref> that {{Main|x}}
advocates [[self-governance]].
[[File:Flag.svg|thumb|A flag caption]]
== History ==
Early text with [http://example.com an external link] &amp; more.<!-- hidden -->
{| class="wikitable"
|-
| table cell || other cell
|}
* a list item
=== Sub section ===
Final ''words''.
== References ==
{{reflist}}
* Some reference
[[Category:Political philosophies]]
"""


def page(title, ns, text, redirect=False, page_id=1):
    redirect_tag = f'<redirect title="{title} target" />' if redirect else ""
    return (f"<page><title>{title}</title><ns>{ns}</ns><id>{page_id}</id>{redirect_tag}"
            f"<revision><id>9</id><text xml:space=\"preserve\">{text}</text></revision></page>")


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_dump(path, pages, truncate=False):
    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><siteinfo><sitename>W</sitename>'
           "</siteinfo>" + "".join(pages) + "</mediawiki>")
    payload = bz2.compress(xml.encode())
    path.write_bytes(payload[: int(len(payload) * 0.8)] if truncate else payload)


def test_wikitext_to_text_keeps_prose_and_headings():
    text = wikitext_to_text(ARTICLE)
    assert text.startswith("Anarchism is a philosophy that")
    assert "self-governance" in text and "History" in text.split("\n") and "Sub section" in text.split("\n")
    assert "an external link & more." in text and "a list item" in text and "Final words." in text
    for dropped in ("cite web", "Main", "Flag", "caption", "table cell", "Category", "hidden", "References",
                    "Some reference", "{{", "[[", "<ref"):
        assert dropped not in text, dropped


def test_dump_reader_skips_redirects_namespaces_and_disambiguation(tmp_path):
    path = tmp_path / "wiki.xml.bz2"
    write_dump(path, [
        page("Anarchism", 0, escape(ARTICLE), page_id=12),
        page("Old name", 0, "#REDIRECT [[Anarchism]]", redirect=True),
        page("Talk:Anarchism", 1, "talk page text"),
        page("Mercury (disambiguation)", 0, "Mercury may refer to"),
        page("Mercury", 0, escape("'''Mercury''' may be:\n* [[Mercury (planet)]]\n{{disambiguation}}")),
        page("Broken", 0, escape("Text with [[unclosed link and {{unclosed template and '''bold")),
    ])
    options = ReadOptions()
    docs = list(read_file(path, options))
    assert [d.meta["title"] for d in docs] == ["Anarchism", "Broken"]
    assert docs[0].meta["page_id"] == "12" and docs[0].id == "wiki.xml.bz2:12"
    assert "Text with" in docs[1].text
    assert options.report.bad_records == {"wiki_redirect": 1, "wiki_non_article_namespace": 1,
                                          "wiki_disambiguation": 2}


def test_truncated_dump_keeps_the_complete_pages(tmp_path, capsys):
    path = tmp_path / "cut.xml.bz2"
    pages = [page(f"Article {i}", 0, escape(f"Article number {i} has some prose. " * 50), page_id=i)
             for i in range(2000)]  # > 900 kB of XML: several bz2 blocks, so a cut leaves whole blocks
    write_dump(path, pages, truncate=True)
    options = ReadOptions()
    docs = list(read_file(path, options))
    assert 0 < len(docs) < 2000
    assert [d.meta["title"] for d in docs] == [f"Article {i}" for i in range(len(docs))]
    # the complete records were kept: the lost tail is a bad record, not a skipped file (issue 9)
    assert options.report.skipped_files == {} and options.report.bad_records["truncated_or_corrupt_tail"] == 1
    assert "truncated or corrupt" in capsys.readouterr().err


def test_quote_markup_language_templates_and_file_links_leave_only_their_words():
    from lmforge.data.wikipedia import has_markup_left, wikitext_to_text

    q2, q3 = "'" * 2, "'" * 3
    cases = {
        f"the {q2}Iliad{q3}s first lines and {q3}bold{q3} text.": "the Iliad's first lines and bold text.",
        f"Paris (French name {q2}{{{{lang|fr|Lutèce}}}}{q2}) is old.": "Paris (French name Lutèce) is old.",
        "Intro.\n[[File:Map.png|thumb|A map of [[France]] {{tpl|[[x]]}} and [[Spain|Spain]]]]\nAfter.":
            "Intro.\n\nAfter.",
        f"rock'n'roll, l{q3}Italie{q3}, {q2}{q3}both{q3}{q2}.": "rock'n'roll, l'Italie, both.",
    }
    for wikitext, expected in cases.items():
        text = wikitext_to_text(wikitext)
        assert text == expected and not has_markup_left(text), (wikitext, text)
    assert has_markup_left("left over [[link")


def test_articles_with_markup_left_are_counted_in_stats(tmp_path, cli):
    path = tmp_path / "dump.xml.bz2"
    write_dump(path, [page("Broken", 0, "Some prose about rivers and hills. " * 5 + "[[unclosed link", page_id=1),
                      page("Clean", 0, "Other prose about lakes and roads. " * 5, page_id=2)])
    assert cli("prepare", path, "--out", tmp_path / "out", "--val-fraction", "0").code == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["docs_with_markup"] == 1


def write_multistream_dump(path, pages, pages_per_stream=2):
    """As Wikipedia's multistream dumps: a header stream, streams of a few pages, a footer stream."""
    header = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><siteinfo><sitename>W</sitename>'
              "</siteinfo>")
    streams = [header] + ["".join(pages[i:i + pages_per_stream]) for i in range(0, len(pages), pages_per_stream)]
    path.write_bytes(b"".join(bz2.compress(s.encode()) for s in [*streams, "</mediawiki>"]))


def test_a_multistream_dump_is_split_and_gives_what_one_reader_gives(tmp_path, cli, monkeypatch):
    import gzip

    from lmforge.data import multistream

    monkeypatch.setattr(multistream, "STREAMS_PER_PART", 2)
    pages = [page(f"Article {i}", 0, escape(f"Article {i} is about topic {i * 7} and more prose. " * 6), page_id=i)
             for i in range(12)]
    write_dump(tmp_path / "single.xml.bz2", pages)
    write_multistream_dump(tmp_path / "multi.xml.bz2", pages)
    assert len(multistream.split_into_parts(tmp_path / "multi.xml.bz2")) == 4   # 8 streams, 2 per part
    assert len(multistream.split_into_parts(tmp_path / "single.xml.bz2")) == 1

    def texts(out):
        return [json.loads(line)["text"] for f in sorted((out / "clean").glob("*.jsonl.gz"))
                for line in gzip.open(f, "rt")]

    for source, workers in (("single", 1), ("multi", 1), ("multi", 2)):
        assert cli("prepare", tmp_path / f"{source}.xml.bz2", "--out", tmp_path / f"{source}-{workers}",
                   "--val-fraction", "0.2", "--workers", workers).code == 0
    expected = texts(tmp_path / "single-1")
    assert len(expected) == 12
    assert texts(tmp_path / "multi-1") == expected and texts(tmp_path / "multi-2") == expected
    stats = json.loads((tmp_path / "multi-2" / "stats.json").read_text())
    assert stats["inputs"] == 4 and stats["docs_in"] == 12
    for rank in range(2):  # two machines, one dump: each takes every other part; merged, the same output
        assert cli("prepare", tmp_path / "multi.xml.bz2", "--out", tmp_path / f"rank-{rank}", "--val-fraction", "0.2",
                   "--rank", rank, "--world-size", 2).code == 0
    assert cli("prepare", "--merge", tmp_path / "rank-0", tmp_path / "rank-1", "--out", tmp_path / "merged").code == 0
    assert texts(tmp_path / "merged") == expected


def test_an_ordinary_bz2_is_recognised_from_its_first_block(tmp_path):
    import random

    from lmforge.data.multistream import stream_offsets

    rng = random.Random(0)   # varied text: repeated text would compress into one small block
    pages = [page(f"Article {i}", 0, " ".join(f"w{rng.randrange(10**6)}" for _ in range(80)), page_id=i)
             for i in range(60)]
    write_dump(tmp_path / "single.xml.bz2", pages)
    write_multistream_dump(tmp_path / "multi.xml.bz2", pages)
    assert (tmp_path / "single.xml.bz2").stat().st_size > 4096
    assert stream_offsets(tmp_path / "single.xml.bz2", block=4096) == [0]
    offsets = stream_offsets(tmp_path / "multi.xml.bz2", block=4096)   # several blocks, headers across them
    assert len(offsets) == 32 and offsets == stream_offsets(tmp_path / "multi.xml.bz2", block=1 << 22)
