"""Our wikitext scanner: hand-worked renderings, and the same words as a renderer that walks
mwparserfromhell's parse tree (an independent parser) on pages of common markup."""

import re

import pytest

from lmforge.data.wikitext import has_markup_left, wikitext_to_text

HAND_WORKED = {
    "[[Paris|the city]] and [[bus]]es.": "the city and buses.",
    "x [[Category:Capitals]] y [[:Category:Capitals]] z [[de:Paris]]": "x y Category:Capitals z",
    "A [[wikt:ambiguous|vague]] or [[wikt:ambiguous]] word; [[Paris#History]] and [[#Early life]].":
        "A vague or ambiguous word; Paris and Early life.",
    "[http://example.org a site], [http://example.org] and http://bare.example.org/x end.": "a site, and end.",
    "H<sub>2</sub>O is <small>small</small> &amp; wet<br/>New line": "H2O is small & wet\nNew line",
    "Euler: <math>e^{i\\pi} = -1</math>. Code <syntaxhighlight lang=c>int x;</syntaxhighlight> gone.":
        "Euler: . Code gone.",
    "__NOTOC__\nIntro.\n== History ==\nOld.\n----\n=== Early ===\n* one\n# two\n;term : definition":
        "Intro.\n\nHistory\n\nOld.\n\nEarly\n\none\ntwo\nterm\ndefinition",
    "Text.<ref>{{cite web|url=x}}</ref> More.<ref name=a/> {{Infobox|a=[[b]]}}<!-- note -->End.":
        "Text. More. End.",
    "Before\n{| class=wikitable\n|-\n| cell || cell\n|}\nAfter": "Before\n\nAfter",
}


@pytest.mark.parametrize("wikitext, expected", HAND_WORKED.items())
def test_hand_worked_renderings(wikitext, expected):
    text = wikitext_to_text(wikitext)
    assert text == expected
    assert not has_markup_left(text)


def test_reference_sections_and_everything_after_them_are_cut():
    text = wikitext_to_text("Body text.\n== See also ==\n* [[Other]]\n== References ==\n{{reflist}}")
    assert text == "Body text."


def test_unclosed_markup_keeps_the_text_before_it():
    text = wikitext_to_text("Text with [[unclosed link and {{unclosed template and '''bold")
    assert text.startswith("Text with")


PAGES = [
    """'''Anarchism''' is a [[political philosophy]] and [[Political movement|movement]] that is sceptical of
[[authority]]. It has been described as ''the'' [[wikt:libertarian|libertarian]] wing of [[socialism]].

== Etymology ==
The word derives from the [[Ancient Greek]] ''anarkhia'', meaning "without a ruler".<ref>Author, p. 3</ref>
Around 1840 [[Pierre-Joseph Proudhon]] adopted the term &mdash; see [http://example.org his writings].

=== In English ===
* First use in [[1642]]
* Later uses in <small>pamphlets</small> and H<sub>2</sub>O chemistry jokes
""",
    """The '''abacus''' (plural ''abaci'' or ''abacuses'') is a [[calculating]] tool.
[[File:Abacus 6.png|thumb|A Chinese [[suanpan]]]]
It was used in [[Ancient Mesopotamia|Mesopotamia]], [[Ancient Egypt|Egypt]] and [[Persia]] &amp; later
in [[Roman Empire|Rome]].<ref name="x">{{cite book|title=Abacus}}</ref>

== Bead arithmetic ==
Beads are moved towards the beam.{{citation needed|date=May 2020}}
# Count with the lower beads
# Carry with the upper beads
[[Category:Mathematical tools]]
""",
]


def _reference_render(nodes) -> str:
    """The visible text of a page through mwparserfromhell's tree: the renderer lmforge used before."""
    import mwparserfromhell.nodes as n

    out = []
    for node in nodes:
        if isinstance(node, n.Text):
            out.append(str(node))
        elif isinstance(node, n.Wikilink):
            title = str(node.title).strip()
            prefix = title.split(":", 1)[0].strip().lower() if ":" in title else None
            if prefix in ("file", "image", "category"):
                continue
            out.append(_reference_render(node.text.nodes) if node.text else title)
        elif isinstance(node, n.ExternalLink):
            out.append(_reference_render(node.title.nodes) if node.title else "")
        elif isinstance(node, n.Heading):
            out.append(_reference_render(node.title.nodes))
        elif isinstance(node, n.Tag):
            if str(node.tag).lower() not in ("ref", "math") and node.contents is not None:
                out.append(_reference_render(node.contents.nodes))
        elif isinstance(node, n.HTMLEntity):
            out.append(node.normalize())
    return "".join(out)


@pytest.mark.parametrize("page", PAGES)
def test_same_words_as_a_renderer_on_mwparserfromhell(page):
    mwparserfromhell = pytest.importorskip("mwparserfromhell")

    def words(text):
        return re.findall(r"\w+", text)

    expected = _reference_render(mwparserfromhell.parse(page).nodes)
    assert words(wikitext_to_text(page)) == words(expected)


def test_unclosed_tags_keep_their_words_and_are_searched_for_once(monkeypatch):
    from lmforge.data import wikitext

    searches = []
    closing = wikitext._SKIPPED_CLOSING["math"]

    class Counting:
        def search(self, text, position):
            searches.append(position)
            return closing.search(text, position)

    monkeypatch.setitem(wikitext._SKIPPED_CLOSING, "math", Counting())
    page = "<math>x " * 500 + "words stay. <ref>a note</ref>Last <ref name=n/>line."
    text = wikitext_to_text(page)
    assert text == "x " * 499 + "x words stay. Last line."
    assert len(searches) == 1  # not once per unclosed tag: a page of them costs linear time


def test_an_unclosed_external_link_leaves_the_next_one_intact():
    text = wikitext_to_text("See [http://a.example unclosed, then [http://b.example the label] and more.")
    assert text.endswith("unclosed, then the label and more.") and "b.example" not in text
