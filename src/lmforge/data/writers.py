"""Write documents as rotating .jsonl.gz files, atomically: a file appears only when complete."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from lmforge.data.documents import Document

DOCS_PER_FILE = 50_000


class DocumentWriter:
    """Writes `<dir>/<name>-00000.jsonl.gz`, ... ; each file is renamed into place when closed."""

    def __init__(self, directory: Path, subdirs: bool = False, docs_per_file: int = DOCS_PER_FILE,
                 stem: str = "part"):
        self.directory = Path(directory)
        self.subdirs = subdirs
        self.stem = stem
        self.docs_per_file = docs_per_file
        self._open: dict[str, tuple[gzip.GzipFile, Path, Path, int]] = {}
        self._file_index: dict[str, int] = {}

    def _target(self, name: str) -> tuple[Path, Path]:
        index = self._file_index.get(name, 0)
        self._file_index[name] = index + 1
        folder = self.directory / name if self.subdirs else self.directory
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{self.stem if self.subdirs else name}-{index:05d}.jsonl.gz"
        return final, final.with_name(f".{final.name}.{os.getpid()}.tmp")

    def write(self, name: str, doc: Document | dict) -> None:
        if name not in self._open:
            final, tmp = self._target(name)
            # mtime=0 keeps the bytes reproducible run to run
            self._open[name] = (gzip.GzipFile(tmp, "wb", compresslevel=6, mtime=0), final, tmp, 0)
        handle, final, tmp, count = self._open[name]
        record = doc if isinstance(doc, dict) else doc.to_record()
        handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        count += 1
        self._open[name] = (handle, final, tmp, count)
        if count >= self.docs_per_file:
            self._close(name)

    def _close(self, name: str) -> None:
        handle, final, tmp, _ = self._open.pop(name)
        handle.close()
        os.replace(tmp, final)

    def close(self) -> None:
        for name in list(self._open):
            self._close(name)

    def __enter__(self) -> DocumentWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:  # leave no half-written files behind
            for handle, _, tmp, _ in self._open.values():
                handle.close()
                tmp.unlink(missing_ok=True)
            self._open.clear()

