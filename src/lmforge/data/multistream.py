"""Multistream .bz2 files (Wikipedia's `pages-articles-multistream` dumps are many bz2 streams one after
another): find the streams, cut a file into parts of whole streams, and read one part on its own, so
that workers and ranks can share a single 20 GB dump.

A part is named `<file>#bytes=<start>-<end>`; its pages are wrapped in a root element when the part
lacks the file's own opening or closing tag, so each part parses as a document of its own."""

from __future__ import annotations

import bz2
import os
import re
from pathlib import Path

STREAM_START = re.compile(rb"BZh[1-9]\x31\x41\x59\x26\x53\x59")  # stream header + first block magic
PART = re.compile(r"^(?P<file>.+)#bytes=(?P<start>\d+)-(?P<end>\d+)$")
STREAMS_PER_PART = 64


def stream_offsets(path: Path, block: int = 1 << 22) -> list[int]:
    """Byte offsets of every bz2 stream in the file. A multistream dump's second stream starts within
    its first kilobytes (the first holds only the site header): when the first block shows one stream,
    the file is an ordinary .bz2 and the rest is not scanned."""
    offsets, carried, base = [], b"", 0
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            if base == 0 and len(chunk) == block and len(list(STREAM_START.finditer(chunk))) <= 1:
                return [0]
            data = carried + chunk
            offsets += [base + m.start() for m in STREAM_START.finditer(data)]
            carried = data[-9:]  # shorter than a header: a header spanning two blocks is found once
            base += len(data) - len(carried)
    return offsets


def split_into_parts(path: Path, streams_per_part: int | None = None) -> list[str]:
    """The file itself, or `file#bytes=a-b` parts of whole streams when it holds several. The parts
    depend on the file alone (not on workers or ranks), so every sharding gives the same output."""
    offsets = stream_offsets(path)
    per_part = streams_per_part or STREAMS_PER_PART
    if len(offsets) <= per_part:
        return [str(path)]
    size = os.path.getsize(path)
    starts = offsets[::per_part]
    return [f"{path}#bytes={a}-{b}" for a, b in zip(starts, [*starts[1:], size])]


def part_of(source) -> tuple[Path, int, int] | None:
    """(file, start, end) of a part name, or None for a whole file."""
    match = PART.match(str(source))
    return (Path(match["file"]), int(match["start"]), int(match["end"])) if match else None


class PartReader:
    """The decompressed bytes of one part, read on demand (a file object for XML iterparse), with a
    `<mediawiki>` opening or closing tag added where the part does not hold the file's own."""

    def __init__(self, path: Path, start: int, end: int):
        self.handle = open(path, "rb")
        self.handle.seek(start)
        self.remaining = end - start
        self.prefix = b"<mediawiki>" if start > 0 else b""
        self.suffix = b"</mediawiki>" if end < os.path.getsize(path) else b""
        self.decompressor, self.buffer, self.done = bz2.BZ2Decompressor(), b"", False
        self.fed = False  # whether the current stream's decompressor has had any input

    def _fill(self, size: int) -> None:
        while len(self.buffer) < size and not self.done:
            if self.decompressor.eof:  # the next stream of the part
                leftover = self.decompressor.unused_data
                self.decompressor, self.fed = bz2.BZ2Decompressor(), bool(leftover)
                if leftover:
                    self.buffer += self.decompressor.decompress(leftover)
                continue
            data = self.handle.read(min(1 << 20, self.remaining))
            self.remaining -= len(data)
            if not data:
                if self.fed and not self.decompressor.eof:
                    raise EOFError("part ends inside a bz2 stream")
                self.buffer += self.suffix
                self.done = True
                break
            self.fed = True
            self.buffer += self.decompressor.decompress(data)

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            self.buffer, self.prefix = self.prefix + self.buffer, b""
        self._fill(size if size >= 0 else 1 << 62)
        if size < 0:
            size = len(self.buffer)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> PartReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
