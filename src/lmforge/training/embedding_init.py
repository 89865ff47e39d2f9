"""Initialising a model's token embedding from word vectors (an embed run, a word2vec or GloVe file).

Each token of the run's tokenizer is matched to a word by its string: the token as written, then without
the word-boundary marks of byte-level BPE ("Ġ") and SentencePiece ("▁"), then lower-cased; WordPiece
continuation pieces ("##ing") match nothing. Matched rows are copied; the others keep their random
initialisation. The coverage is reported, since it is what decides whether the vectors help.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lmforge.embeddings.vectors import read_vectors
from lmforge.errors import InputError

BOUNDARY_MARKS = ("Ġ", "▁")


@dataclass
class EmbeddingInit:
    source: str
    matched: int
    tokens: int
    examples: list[str]

    @property
    def coverage(self) -> float:
        return self.matched / max(self.tokens, 1)

    def describe(self) -> str:
        return (f"--init-embeddings {self.source}: {self.matched:,} of {self.tokens:,} token embeddings "
                f"({100 * self.coverage:.1f}%) initialised from the vectors (e.g. {', '.join(self.examples[:5])}); "
                "the others keep their random init")


def token_candidates(token: str) -> list[str]:
    if token.startswith("##"):
        return []
    stripped = token
    for mark in BOUNDARY_MARKS:
        stripped = stripped.replace(mark, "")
    out = [token, stripped, stripped.lower()]
    return [c for i, c in enumerate(out) if c and c not in out[:i]]


def input_embedding(model: nn.Module) -> nn.Embedding:
    embedding = getattr(model, "embed", None)
    if not isinstance(embedding, nn.Embedding):
        raise InputError(f"--init-embeddings: a {type(model).__name__} has no token embedding to initialise.")
    return embedding


def init_embeddings(model: nn.Module, token_strings: list[str], source: Path) -> EmbeddingInit:
    vectors = read_vectors(Path(source))
    embedding = input_embedding(model)
    dim = embedding.weight.shape[1]
    if vectors.dim != dim:
        raise InputError(f"--init-embeddings {source}: the vectors have {vectors.dim} dimensions, the model's "
                         f"embedding {dim}; train vectors with --dim {dim} or give the model an embedding of "
                         f"{vectors.dim} (--d-model, or --d-embed for recurrent models).")
    index: dict[str, int] = {}
    for i, word in enumerate(vectors.words):   # most frequent first: it wins a case-folded collision
        index.setdefault(word, i)
        index.setdefault(word.lower(), i)
    rows, sources = [], []
    for token_id, token in enumerate(token_strings[:embedding.weight.shape[0]]):
        found = next((index[c] for c in token_candidates(token) if c in index), None)
        if found is not None:
            rows.append(token_id)
            sources.append(found)
    with torch.no_grad():
        if rows:
            data = torch.from_numpy(np.ascontiguousarray(vectors.vectors[sources], dtype=np.float32))
            embedding.weight[torch.tensor(rows)] = data.to(embedding.weight.dtype)
    return EmbeddingInit(str(source), len(rows), len(token_strings), [token_strings[r] for r in rows[:20]])


def freeze_embedding(model: nn.Module) -> None:
    """No gradient for the token embedding (an output head tied to it stays fixed too)."""
    input_embedding(model).weight.requires_grad_(False)
