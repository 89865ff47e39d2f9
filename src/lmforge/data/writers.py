"""Write documents as rotating .jsonl.gz files, atomically: a file appears only when complete.

A file is a series of gzip members of about 1 MiB of input each (any gzip reader reads them as one
stream, as it does pigz's output), so that several threads can compress the members of one file at
once (zlib releases the GIL); the bytes depend only on the lines written, not on the thread count."""

from __future__ import annotations

import gzip
import json
import os
from collections import deque
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

from lmforge.data.documents import Document

DOCS_PER_FILE = 50_000
MEMBER_BYTES = 1 << 20
LEVEL = 6


class GzipMembers:
    """A binary file written as gzip members, compressed inline or by an executor's threads, in order."""

    def __init__(self, path: Path, executor: Executor | None = None, threads: int = 1, level: int = LEVEL):
        self.handle = open(path, "wb")
        self.executor, self.level = executor, level
        self.max_pending = 2 * threads
        self.buffer: list[bytes] = []
        self.size = 0
        self.pending: deque = deque()

    def write(self, data: bytes) -> None:
        self.buffer.append(data)
        self.size += len(data)
        if self.size >= MEMBER_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        chunk, self.buffer, self.size = b"".join(self.buffer), [], 0
        if self.executor is None:
            self.handle.write(gzip.compress(chunk, self.level, mtime=0))  # mtime=0: reproducible bytes
            return
        self.pending.append(self.executor.submit(gzip.compress, chunk, self.level, mtime=0))
        while len(self.pending) > self.max_pending:
            self.handle.write(self.pending.popleft().result())

    def close(self) -> None:
        self._flush()
        while self.pending:
            self.handle.write(self.pending.popleft().result())
        self.handle.close()

    def abandon(self) -> None:
        for future in self.pending:
            future.cancel()
        self.handle.close()


class DocumentWriter:
    """Writes `<dir>/<name>-00000.jsonl.gz`, ... ; each file is renamed into place when closed."""

    def __init__(self, directory: Path, subdirs: bool = False, docs_per_file: int = DOCS_PER_FILE,
                 stem: str = "part", threads: int = 1):
        self.directory = Path(directory)
        self.subdirs = subdirs
        self.stem = stem
        self.docs_per_file = docs_per_file
        self.threads = max(1, threads)
        self.executor = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self._open: dict[str, tuple[GzipMembers, Path, Path, int]] = {}
        self._file_index: dict[str, int] = {}

    def _target(self, name: str) -> tuple[Path, Path]:
        index = self._file_index.get(name, 0)
        self._file_index[name] = index + 1
        folder = self.directory / name if self.subdirs else self.directory
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{self.stem if self.subdirs else name}-{index:05d}.jsonl.gz"
        return final, final.with_name(f".{final.name}.{os.getpid()}.tmp")

    def write(self, name: str, doc: Document | dict) -> None:
        record = doc if isinstance(doc, dict) else doc.to_record()
        self.write_line(name, json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")

    def write_line(self, name: str, line: bytes) -> None:
        """One JSON line, already encoded (with its newline)."""
        if name not in self._open:
            final, tmp = self._target(name)
            self._open[name] = (GzipMembers(tmp, self.executor, self.threads), final, tmp, 0)
        handle, final, tmp, count = self._open[name]
        handle.write(line)
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
        if self.executor is not None:
            self.executor.shutdown()

    def __enter__(self) -> DocumentWriter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
            return
        for handle, _, tmp, _ in self._open.values():  # leave no half-written files behind
            handle.abandon()
            tmp.unlink(missing_ok=True)
        self._open.clear()
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
