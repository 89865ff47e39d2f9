"""`lmforge embed`: static word vectors (word2vec skip-gram/CBOW, GloVe) trained on a prepared corpus,
evaluated on the standard similarity and analogy sets, explored, exported and plotted.

Examples (CPU, minutes):
    lmforge embed train data/wiki --method skipgram --dim 100 --window 5 --negative 5 --epochs 5 --out runs/w2v
    lmforge embed train data/wiki --method glove --dim 100 --window 10 --epochs 25 --out runs/glove
    lmforge embed eval runs/w2v --json
    lmforge embed neighbours runs/w2v king queen --top 10
    lmforge embed export runs/w2v --format word2vec-binary --out vectors.bin
    lmforge embed plot runs/w2v --words-file words.txt --out map.png
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.config import add_actions, config_from_args
from lmforge.embeddings.evaluate import evaluate_vectors, neighbours
from lmforge.embeddings.plot import plot_vectors
from lmforge.embeddings.train import EmbedTrainConfig, train_embeddings
from lmforge.embeddings.vectors import WordVectors, write_word2vec
from lmforge.errors import InputError


@dataclass
class EmbedEvalConfig:
    vectors: Path = field(default=Path("."), metadata={"positional": True})
    """embed run, or a word2vec/GloVe vectors file"""
    similarity: list[Path] | None = field(default=None, metadata={"append": True})
    """your own 'w1<TAB>w2<TAB>score' file (repeatable; None: the standard sets)"""
    analogies: Path | None = None
    """your own analogy file (questions-words.txt layout)"""


@dataclass
class NeighboursConfig:
    vectors: Path = field(default=Path("."), metadata={"positional": True})
    """embed run, or a word2vec/GloVe vectors file"""
    words: list[str] = field(default_factory=list, metadata={"positional": True})
    """words to look up"""
    top: int = 10
    """neighbours per word"""


@dataclass
class ExportConfig:
    vectors: Path = field(default=Path("."), metadata={"positional": True})
    """embed run, or a word2vec/GloVe vectors file"""
    out: Path = field(default=Path("."), metadata={"required": True})
    """file to write"""
    format: str = field(default="word2vec-text", metadata={"choices": ("word2vec-text", "word2vec-binary")})
    """word2vec.c's text or binary layout"""


@dataclass
class PlotConfig:
    vectors: Path = field(default=Path("."), metadata={"positional": True})
    """embed run, or a word2vec/GloVe vectors file"""
    words_file: Path | None = None
    """words to show, one a line (None: the 150 most frequent)"""
    method: str = field(default="pca", metadata={"choices": ("pca", "tsne")})
    """projection to two dimensions"""
    out: Path = Path("embedding_map.png")
    """PNG to write"""


ACTIONS = {"train": (EmbedTrainConfig, "train word vectors on a prepared dataset or a text file"),
           "eval": (EmbedEvalConfig, "similarity (Spearman) and analogy accuracy on the standard sets"),
           "neighbours": (NeighboursConfig, "nearest words by cosine similarity"),
           "export": (ExportConfig, "write vectors in the word2vec text or binary format"),
           "plot": (PlotConfig, "2-D map of words (PCA or t-SNE) as a PNG")}


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_actions(parser, ACTIONS, json_actions=("train", "eval", "neighbours"), aliases={"neighbours": ["neighbors"]})


def _train(c: EmbedTrainConfig, as_json: bool) -> int:
    result = train_embeddings(c)
    speed = f", {result['words_per_s']:,.0f} words/s" if "words_per_s" in result else \
        f", {result['nonzero']:,} co-occurrences, final cost {result['costs'][-1]:.4f}"
    print(f"embed: {result['method']} on {result['kept_words']:,} words ({result['vocab_size']:,} in the vocabulary), "
          f"{result['epochs']} epochs"
          f"{speed}, {result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB -> {result['out']}",
          file=sys.stderr)
    if as_json:
        print(json.dumps(result))
    return 0


def _vectors(path: Path) -> WordVectors:
    from lmforge.embeddings.vectors import read_vectors

    return read_vectors(path)


def _eval(c: EmbedEvalConfig, as_json: bool) -> int:
    vectors = _vectors(c.vectors)
    files = {Path(p).stem: Path(p) for p in c.similarity} if c.similarity else None
    result = evaluate_vectors(vectors, files, c.analogies)
    for name, value in result.items():
        if name == "analogy":
            add = value["accuracy_3cosadd"]
            mul = value["accuracy_3cosmul"]
            print(f"analogy: 3CosAdd {_percent(add)}, 3CosMul {_percent(mul)} over {value['questions']:,} questions "
                  f"({value['oov_questions']:,} OOV, top {value['restrict_vocab']:,} words)", file=sys.stderr)
        else:
            rho = "n/a" if value["spearman"] is None else f"{value['spearman']:.4f}"
            print(f"{name}: Spearman {rho} over {value['pairs']} pairs ({value['oov_pairs']} OOV, coverage "
                  f"{100 * value['coverage']:.0f}%)", file=sys.stderr)
    if as_json:
        print(json.dumps({"vectors": str(c.vectors), **result}))
    return 0


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _neighbours(c: NeighboursConfig, as_json: bool) -> int:
    if c.top < 1:
        raise InputError(f"--top must be at least 1, got {c.top}.")
    vectors = _vectors(c.vectors)
    out = {word: neighbours(vectors, word, c.top) for word in c.words}
    unknown = [word for word, found in out.items() if found is None]
    if unknown:   # checked before anything is printed: a typo is an error, not a silent gap
        known = set(vectors.words)
        hints = [f"{w} -> {w.lower()}" for w in unknown if w.lower() != w and w.lower() in known]
        raise InputError(f"{c.vectors}: not in the vocabulary of {len(vectors.words):,} words: {', '.join(unknown)}"
                         + (f" (try {', '.join(hints)})" if hints else "; check the spelling (and case)") + ".")
    if as_json:
        print(json.dumps({w: [{"word": x, "cosine": s} for x, s in n] for w, n in out.items()}, ensure_ascii=False))
        return 0
    for word, found in out.items():
        print(f"{word}: " + ", ".join(f"{w} {s:.3f}" for w, s in found))
    return 0


def _export(c: ExportConfig, as_json: bool) -> int:
    vectors = _vectors(c.vectors)
    write_word2vec(vectors, c.out, binary=c.format == "word2vec-binary")
    print(f"embed: wrote {len(vectors.words):,} vectors of {vectors.dim} to {c.out} ({c.format})", file=sys.stderr)
    return 0


def _plot(c: PlotConfig, as_json: bool) -> int:
    vectors = _vectors(c.vectors)
    words = None
    if c.words_file is not None:
        try:
            words = [w.strip() for w in c.words_file.read_text(encoding="utf-8").splitlines() if w.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"{c.words_file}: cannot read words ({error}).") from None
    shown, missing = plot_vectors(vectors, words, c.method, c.out)
    print(f"embed: {shown} words on {c.out} ({c.method})" + (f"; not in the vocabulary: {', '.join(missing[:10])}"
                                                             if missing else ""), file=sys.stderr)
    return 0


HANDLERS = {"train": _train, "eval": _eval, "neighbours": _neighbours, "export": _export, "plot": _plot}


def run(args: argparse.Namespace) -> int:
    action = "neighbours" if args.action == "neighbors" else args.action
    return HANDLERS[action](config_from_args(ACTIONS[action][0], args), getattr(args, "json", False))
