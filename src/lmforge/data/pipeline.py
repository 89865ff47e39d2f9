"""Run a chain of small steps over a document stream, count and route rejects, split train/val."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lmforge.data.cleaning import dedup_key
from lmforge.data.documents import Document
from lmforge.data.writers import DocumentWriter


@dataclass
class Step:
    """A map (returns the document, maybe changed) or a filter (returns None to reject with `reason`)."""

    name: str
    apply: Callable[[Document], Document | None]
    reason: str = ""


def map_step(fn: Callable[[Document], Document]) -> Step:
    return Step(fn.__name__, fn)


def keep_if(predicate: Callable[[Document], bool], reason: str) -> Step:
    """A filter step: documents for which `predicate` is false are rejected as `reason`."""
    return Step(reason, lambda doc: doc if predicate(doc) else None, reason)


def dedup_exact() -> Step:
    """Drops every document whose normalised text was seen before (memory: 8 bytes per kept doc)."""
    seen: set[int] = set()

    def first_of_its_text(doc: Document) -> Document | None:
        digest = int.from_bytes(hashlib.blake2b(dedup_key(doc.text).encode(), digest_size=8).digest(), "big")
        if digest in seen:
            return None
        seen.add(digest)
        return doc

    return Step("exact_duplicate", first_of_its_text, "exact_duplicate")


def hash_fraction(text: str) -> float:
    """A number in [0, 1) fixed by the text alone, so the split never depends on order or sharding."""
    return int(hashlib.sha256(dedup_key(text).encode()).hexdigest()[:8], 16) / 2**32


@dataclass
class PipelineStats:
    docs_in: int = 0
    bytes_in: int = 0
    docs_out: dict[str, int] = field(default_factory=dict)
    bytes_out: dict[str, int] = field(default_factory=dict)
    rejected_docs: dict[str, int] = field(default_factory=dict)
    rejected_bytes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "docs_in": self.docs_in, "bytes_in": self.bytes_in,
            "docs_out": self.docs_out, "bytes_out": self.bytes_out,
            "rejected_docs": self.rejected_docs, "rejected_bytes": self.rejected_bytes,
        }


def _count(table: dict[str, int], key: str, amount: int) -> None:
    table[key] = table.get(key, 0) + amount


def run_pipeline(docs: Iterable[Document], steps: list[Step], writer: DocumentWriter,
                 split: Callable[[Document], str], stats: PipelineStats,
                 rejects: DocumentWriter | None = None) -> PipelineStats:
    """Push each document through `steps`; a kept one goes to `writer` under the split `split(doc)`."""
    for doc in docs:
        size = len(doc.text.encode("utf-8"))
        stats.docs_in += 1
        stats.bytes_in += size
        for step in steps:
            result = step.apply(doc)
            if result is None:
                _count(stats.rejected_docs, step.reason, 1)
                _count(stats.rejected_bytes, step.reason, size)
                if rejects is not None:
                    rejects.write(step.reason, doc)
                break
            doc = result
        else:
            name = split(doc)
            writer.write(name, doc)
            _count(stats.docs_out, name, 1)
            _count(stats.bytes_out, name, len(doc.text.encode("utf-8")))
    return stats
