"""The default corpus that needs no download: Python's own reference documentation.

`pydoc_data.topics` (the language reference topics) plus the docstrings of every standard-library
module, class and function, read with `ast` from the source files (nothing is imported or run).
Several MB of real English technical prose, present in every Python installation.
"""

from __future__ import annotations

import ast
import gzip
import json
import sysconfig
from collections.abc import Iterator
from pathlib import Path

SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3"}


def pydoc_topics() -> Iterator[tuple[str, str]]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip it
        return
    for name, text in sorted(topics.items()):
        yield f"pydoc:{name}", text


def _docstrings(tree: ast.Module, module: str) -> Iterator[tuple[str, str]]:
    doc = ast.get_docstring(tree)
    if doc:
        yield module, doc
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc and len(doc) >= 80:  # one-liners are mostly boilerplate
                yield f"{module}.{node.name}", doc


def stdlib_docstrings() -> Iterator[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIP_DIRS.intersection(relative.parts) or relative.name.startswith("test_"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        yield from _docstrings(tree, ".".join(relative.with_suffix("").parts))


def write_embedded_corpus(out_file: Path) -> dict:
    """Write the corpus as JSONL.gz with {"id", "text"} records; return its size."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    docs = chars = 0
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as handle:
        for source in (pydoc_topics(), stdlib_docstrings()):
            for doc_id, text in source:
                handle.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
                docs += 1
                chars += len(text)
    tmp.replace(out_file)
    return {"documents": docs, "chars": chars, "path": str(out_file)}
