"""Wikitext scanner on pathological pages (unclosed tags, links and comments by the thousand, deep
nesting, long lines) and on random mixes of markup tokens: milliseconds per page. Every row should be
a few milliseconds (linear time); a quadratic pass shows as seconds.
    python bench/wikitext_worst_case.py
"""

from __future__ import annotations

import json
import random
import time

from common import machine

from lmforge.data.wikitext import wikitext_to_text

PAGES = {
    "2000 unclosed <math>": "<math>x " * 2000 + "text " * 20000,
    "2000 unclosed <ref>": "<ref>x " * 2000 + "text " * 20000,
    "5000 unclosed external links on one line": "[http://a.b " * 5000,
    "3000 unclosed file links": "[[File:x|" * 3000 + "text",
    "5000-deep links": "[[" * 5000 + "a" + "]]" * 5000,
    "20000-deep templates": "{{" * 20000 + "}}" * 20000,
    "20000 headings": "\n== a ==\ntext" * 20000,
    "100000 '=' on one line": "=" * 100000 + "x",
    "unclosed comment": "<!--" + "x" * 200000,
    "50000 quote pairs": "''" * 50000,
}
TOKENS = ["[[", "]]", "{{", "}}", "{|", "|}", "|", "'''", "''", "<ref>", "</ref>", "<ref name=a/>", "<math>", "</math>",
          "<!--", "-->", "\n", "\n== ", " ==", "\n* ", "[http://x.org ", "]", "&amp;", "&", "<br/>", "<small>",
          "</small>", "word ", "Category:", "File:", ":", "#", "http://y.com/z ", "<", ">", "__TOC__", "\n;", "="]


def milliseconds(text: str) -> float:
    start = time.perf_counter()
    wikitext_to_text(text)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    print(f"# {machine()}")
    for name, page in PAGES.items():
        print(json.dumps({"page": name, "chars": len(page), "ms": round(milliseconds(page), 1)}))
    rng = random.Random(0)
    mixes = ["".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 400))) for _ in range(3000)]
    print(json.dumps({"page": "3000 random markup mixes", "worst_ms": round(max(map(milliseconds, mixes)), 2)}))


if __name__ == "__main__":
    main()
