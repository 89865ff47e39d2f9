"""Word vectors on disk: lmforge embed runs (vectors.safetensors + vocab.json + config.toml), and the
word2vec text/binary formats (read and written) and GloVe's text format (read), so vectors move to and
from gensim, fastText, the original C tools and the published GloVe files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.artifacts import atomic_write_bytes, read_json, save_arrays, write_json
from lmforge.errors import InputError
from lmforge.runs import RunConfig, open_run, write_run

WEIGHTS = "vectors.safetensors"
VOCAB = "vocab.json"
FAMILIES = ("word2vec", "glove")


@dataclass
class WordVectors:
    words: list[str]
    vectors: np.ndarray          # (V, dim) float32, most frequent word first when counts are known
    counts: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


def save_embed_run(out: Path, vectors: WordVectors, family: str, corpus: str, model: dict, train: dict,
                   tokenizer_sha256: str = "") -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {"vectors": np.ascontiguousarray(vectors.vectors, dtype=np.float32)}
    if vectors.counts is not None:
        tensors["counts"] = vectors.counts.astype(np.int64)
    save_arrays(out / WEIGHTS, tensors, "vectors")
    write_json(out / VOCAB, vectors.words)
    write_run(out, RunConfig(family, "", "embeddings", "", tokenizer_sha256, corpus=corpus, kind="embeddings"),
              {"model": model, "train": train})


def load_embed_run(run_dir: Path) -> tuple[WordVectors, dict]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    run = open_run(run_dir).require("embed", "embeddings")
    run_dir, config = run.path, run.sections
    words = read_json(run_dir / VOCAB, "vocabulary")
    try:
        tensors = load_file(str(run_dir / WEIGHTS))
    except (FileNotFoundError, SafetensorError) as error:
        raise InputError(f"{run_dir / WEIGHTS}: missing or damaged vectors ({error}); train the run again.") from None
    if len(tensors["vectors"]) != len(words):
        raise InputError(f"{run_dir / VOCAB}: {len(words)} words but {len(tensors['vectors'])} vectors; the run "
                         "directory was mixed up.")
    return WordVectors(words, tensors["vectors"], tensors.get("counts")), config


def write_word2vec(vectors: WordVectors, path: Path, binary: bool) -> None:
    """word2vec.c's formats: a 'V dim' header, then per word the word, a space and the vector (text:
    decimals; binary: dim little-endian float32 and a newline)."""
    out = io.BytesIO()
    out.write(f"{len(vectors.words)} {vectors.dim}\n".encode())
    data = np.ascontiguousarray(vectors.vectors, dtype="<f4")
    for word, vector in zip(vectors.words, data):
        if binary:
            out.write(word.encode("utf-8") + b" " + vector.tobytes() + b"\n")
        else:
            out.write((word + " " + " ".join(vector.astype(str).tolist()) + "\n").encode("utf-8"))
    atomic_write_bytes(Path(path), out.getvalue())


def read_vectors(path: Path) -> WordVectors:
    """An embed run directory, or a word2vec (text or binary) or GloVe (text, no header) file."""
    path = Path(path)
    if path.is_dir():
        return load_embed_run(path)[0]
    if not path.is_file():
        raise InputError(f"{path}: no such vectors file or embed run directory.")
    with open(path, "rb") as handle:
        first = handle.readline()
        header = first.split()
        has_header = len(header) == 2 and all(part.isdigit() for part in header)
        if has_header and _looks_binary(handle, int(header[1])):
            return _read_binary(handle, int(header[0]), int(header[1]), path)
    return _read_text(path, skip_header=has_header)


def _looks_binary(handle, dim: int) -> bool:
    position = handle.tell()
    sample = handle.read(4 * dim + 64)
    handle.seek(position)
    try:
        sample.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def _read_binary(handle, count: int, dim: int, path: Path) -> WordVectors:
    words, vectors = [], np.empty((count, dim), dtype=np.float32)
    for i in range(count):
        word = bytearray()
        while (ch := handle.read(1)) != b" ":
            if not ch:
                raise InputError(f"{path}: truncated word2vec binary file ({i} of {count} vectors).")
            if ch != b"\n":
                word += ch
        raw = handle.read(4 * dim)
        if len(raw) < 4 * dim:
            raise InputError(f"{path}: truncated word2vec binary file ({i} of {count} vectors).")
        words.append(word.decode("utf-8", errors="replace"))
        vectors[i] = np.frombuffer(raw, dtype="<f4")
    return WordVectors(words, vectors)


def _read_text(path: Path, skip_header: bool) -> WordVectors:
    words, rows = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        if skip_header:
            handle.readline()
        for number, line in enumerate(handle, start=2 if skip_header else 1):
            parts = line.rstrip().split(" ")
            if len(parts) < 2:
                continue
            try:
                rows.append(np.asarray(parts[1:], dtype=np.float32))
            except ValueError:
                raise InputError(f"{path}:{number}: not a vector line ('word v1 v2 ...').") from None
            if len(rows[-1]) != len(rows[0]):
                raise InputError(f"{path}:{number}: {len(rows[-1])} numbers, the first vector has {len(rows[0])}.")
            words.append(parts[0])
    if not rows:
        raise InputError(f"{path}: no vectors found; expected word2vec or GloVe text ('word v1 v2 ...').")
    return WordVectors(words, np.stack(rows))
