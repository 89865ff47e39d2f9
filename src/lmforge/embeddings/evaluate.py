"""Intrinsic evaluation of word vectors on the standard sets, read from gensim's package data (WordSim-353,
SimLex-999, the Google analogy questions; gensim ships them with its tests, we do not copy them).

- similarity: Spearman's rho between cosine similarity and the human scores, over the pairs whose words
  are in the vocabulary (case-insensitive, as gensim's evaluate_word_pairs), with the OOV count;
- analogy: a:b :: c:? answered over the 30,000 most frequent words (the customary restriction), by
  3CosAdd (argmax cos(x, b - a + c)) and 3CosMul (Levy & Goldberg 2014), a, b, c excluded; questions with
  a word outside those 30,000 are counted as OOV and skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmforge.embeddings.vectors import WordVectors
from lmforge.errors import InputError

SIMILARITY_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
ANALOGY_SET = "questions-words.txt"
ANALOGY_VOCAB = 30_000


def gensim_data(name: str) -> Path:
    try:
        from gensim.test.utils import datapath
    except ImportError:
        raise InputError("the standard evaluation sets are read from gensim's package data: pip install gensim "
                         "(or pip install 'lmforge[embed]'), or pass your own files.") from None
    return Path(datapath(name))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: Pearson's correlation of the ranks, ties given their average rank."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / np.bincount(inverse))[inverse]


class Lookup:
    """Case-insensitive word -> row (the most frequent spelling wins), over the first `limit` words."""

    def __init__(self, vectors: WordVectors, limit: int | None = None):
        count = len(vectors.words) if limit is None else min(limit, len(vectors.words))
        unit = vectors.vectors[:count].astype(np.float32)
        norms = np.linalg.norm(unit, axis=1, keepdims=True)
        self.unit = unit / np.maximum(norms, 1e-12)
        self.words = vectors.words[:count]
        self.index: dict[str, int] = {}
        for i, word in enumerate(self.words):
            self.index.setdefault(word.lower(), i)

    def get(self, word: str) -> int | None:
        return self.index.get(word.lower())


def similarity(vectors: WordVectors, path: Path) -> dict:
    lookup = Lookup(vectors, 300_000)
    pairs, oov = [], 0
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 3:
            continue
        a, b = lookup.get(parts[0]), lookup.get(parts[1])
        if a is None or b is None:
            oov += 1
            continue
        pairs.append((a, b, float(parts[2])))
    total = len(pairs) + oov
    if len(pairs) < 2:
        return {"spearman": None, "pairs": len(pairs), "oov_pairs": oov, "coverage": len(pairs) / max(total, 1)}
    a, b, human = (np.array(column) for column in zip(*pairs))
    cosine = (lookup.unit[a] * lookup.unit[b]).sum(axis=1)
    return {"spearman": spearman(cosine, human), "pairs": len(pairs), "oov_pairs": oov,
            "coverage": len(pairs) / total}


def read_analogies(path: Path) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    sections: list[tuple[str, list]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
        elif line.strip() and sections:
            words = line.split()
            if len(words) == 4:
                sections[-1][1].append(tuple(words))
    return sections


def analogy(vectors: WordVectors, path: Path, limit: int = ANALOGY_VOCAB, batch: int = 256) -> dict:
    lookup = Lookup(vectors, limit)
    sections, all_add, all_mul, oov = [], 0, 0, 0
    for name, questions in read_analogies(path):
        ids = [[lookup.get(w) for w in q] for q in questions]
        known = np.array([q for q in ids if None not in q], dtype=np.int64).reshape(-1, 4)
        oov += len(ids) - len(known)
        add = mul = 0
        for start in range(0, len(known), batch):
            a, b, c, d = known[start:start + batch].T
            add_pred, mul_pred = _answer(lookup.unit, a, b, c)
            add += int((add_pred == d).sum())
            mul += int((mul_pred == d).sum())
        all_add, all_mul = all_add + add, all_mul + mul
        sections.append({"section": name, "questions": len(known), "oov": len(ids) - len(known),
                         "accuracy_3cosadd": add / len(known) if len(known) else None,
                         "accuracy_3cosmul": mul / len(known) if len(known) else None})
    answered = sum(s["questions"] for s in sections)

    def subset(semantic: bool, field: str):
        chosen = [s for s in sections if s["section"].startswith("gram") != semantic and s["questions"]]
        n = sum(s["questions"] for s in chosen)
        return sum(s[field] * s["questions"] for s in chosen) / n if n else None

    return {"accuracy_3cosadd": all_add / answered if answered else None,
            "accuracy_3cosmul": all_mul / answered if answered else None,
            "semantic_3cosadd": subset(True, "accuracy_3cosadd"),
            "syntactic_3cosadd": subset(False, "accuracy_3cosadd"),
            "questions": answered, "oov_questions": oov, "coverage": answered / max(answered + oov, 1),
            "restrict_vocab": limit, "sections": sections}


def _answer(unit: np.ndarray, a, b, c) -> tuple[np.ndarray, np.ndarray]:
    sa, sb, sc = unit[a] @ unit.T, unit[b] @ unit.T, unit[c] @ unit.T   # (B, V) cosines
    rows = np.arange(len(a))
    add = sb - sa + sc
    # 3CosMul on cosines shifted to [0, 1]
    mul = ((sb + 1) / 2) * ((sc + 1) / 2) / ((sa + 1) / 2 + 1e-3)
    for scores in (add, mul):
        scores[rows, a] = scores[rows, b] = scores[rows, c] = -np.inf
    return add.argmax(axis=1), mul.argmax(axis=1)


def evaluate_vectors(vectors: WordVectors, similarity_files: dict[str, Path] | None = None,
                     analogy_file: Path | None = None) -> dict:
    files = similarity_files or {name: gensim_data(file) for name, file in SIMILARITY_SETS.items()}
    result = {name: similarity(vectors, path) for name, path in files.items()}
    result["analogy"] = analogy(vectors, analogy_file or gensim_data(ANALOGY_SET))
    return result


def neighbours(vectors: WordVectors, word: str, top: int = 10) -> list[tuple[str, float]] | None:
    lookup = Lookup(vectors)
    row = lookup.get(word)
    if row is None:
        return None
    scores = lookup.unit @ lookup.unit[row]
    scores[row] = -np.inf
    best = np.argsort(-scores)[:top]
    return [(lookup.words[i], float(scores[i])) for i in best]
