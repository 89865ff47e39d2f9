"""Run a chain of small steps over a document stream; count and route rejects by reason."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lmforge.data.cleaning import dedup_key
from lmforge.data.documents import Document


@dataclass
class Step:
    """A map or filter: `apply` returns the (maybe changed) document, or a reason string to reject it."""

    name: str
    apply: Callable[[Document], Document | str]


def map_step(fn: Callable[[Document], Document]) -> Step:
    return Step(getattr(fn, "__name__", type(fn).__name__), fn)


def keep_if(predicate: Callable[[Document], bool], reason: str) -> Step:
    """A filter step: documents for which `predicate` is false are rejected as `reason`."""
    return Step(reason, lambda doc: doc if predicate(doc) else reason)


def reject_by(check: Callable[[Document], str | None], name: str) -> Step:
    """A filter step from a check that names its reason for rejecting (None keeps the document)."""
    def apply(doc: Document) -> Document | str:
        reason = check(doc)
        return doc if reason is None else reason
    return Step(name, apply)


def _fraction(key: bytes) -> float:
    return int(hashlib.sha256(key).hexdigest()[:8], 16) / 2**32


def hash_fraction(text: str) -> float:
    """A number in [0, 1) fixed by the text alone, so the split never depends on order or sharding."""
    return _fraction(dedup_key(text).encode())


def document_keys(text: str) -> tuple[int, float]:
    """The text's exact-duplicate key (a 64-bit digest of the normalised text: equal for copies that
    differ only in case and whitespace) and its hash_fraction, normalising the text once."""
    key = dedup_key(text).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little"), _fraction(key)


@dataclass
class StepCounts:
    docs_in: int = 0
    bytes_in: int = 0
    docs_kept: int = 0
    bytes_kept: int = 0
    rejected_docs: dict[str, int] = field(default_factory=dict)
    rejected_bytes: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, size: int) -> None:
        self.rejected_docs[reason] = self.rejected_docs.get(reason, 0) + 1
        self.rejected_bytes[reason] = self.rejected_bytes.get(reason, 0) + size


def run_pipeline(docs: Iterable[Document], steps: list[Step], keep: Callable[[Document], None],
                 reject: Callable[[str, Document], None], counts: StepCounts) -> StepCounts:
    """Push each document through `steps`; kept ones go to `keep`, rejected ones to `reject`."""
    for doc in docs:
        size = len(doc.text.encode("utf-8"))
        counts.docs_in += 1
        counts.bytes_in += size
        for step in steps:
            result = step.apply(doc)
            if isinstance(result, str):
                counts.reject(result, size)
                reject(result, doc)
                break
            doc = result
        else:
            counts.docs_kept += 1
            counts.bytes_kept += len(doc.text.encode("utf-8"))
            keep(doc)
    return counts
