"""The document record that flows through every data step."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Document:
    """One unit of text with its provenance (source file and position inside it)."""

    text: str
    id: str
    source: str
    meta: dict = field(default_factory=dict)

    def to_record(self) -> dict:
        return {"text": self.text, "id": self.id, "source": self.source, **self.meta}
