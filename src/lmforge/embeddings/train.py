"""Training word vectors as `lmforge embed train` does: a prepared dataset (or a text file) read into word
ids, then word2vec (skip-gram, CBOW) or GloVe, saved as an embed run. A notebook calls
`train_embeddings(EmbedTrainConfig(data=..., out=...))`."""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lmforge.artifacts import atomic_write_text
from lmforge.embeddings.corpus import encode_corpus
from lmforge.embeddings.vectors import WordVectors, save_embed_run
from lmforge.errors import InputError
from lmforge.runs import RUN_CONFIG, source_path
from lmforge.tokenization.words import WordSplitter, corpus_lines

METHODS = ("skipgram", "cbow", "glove")


@dataclass
class EmbedTrainConfig:
    data: Path = field(default=Path("."), metadata={"positional": True})
    """prepared dataset (lmforge prepare), or a .txt/.txt.gz file"""
    out: Path = field(default=Path("."), metadata={"required": True})
    """run directory to create"""
    method: str = field(default="skipgram", metadata={"choices": METHODS})
    """skipgram or cbow (word2vec), or glove"""
    dim: int = 100
    """vector size"""
    window: int | None = None
    """context window (None: 5; GloVe 10)"""
    epochs: int | None = None
    """passes (None: word2vec 5 on 2M words or more, up to 20 on smaller corpora, so a small corpus is read
    about 10M words' worth (5 passes over 230k words left neighbours degenerate); GloVe 25)"""
    negative: int = 5
    """negative samples per prediction (word2vec)"""
    hs: bool = False
    """hierarchical softmax (with --negative 0: instead of it)"""
    sample: float = 1e-3
    """subsampling of frequent words (word2vec)"""
    alpha: float | None = None
    """initial learning rate (None: word2vec 0.025 skip-gram, 0.05 CBOW; GloVe 0.05)"""
    min_count: int = 5
    """ignore words seen fewer times"""
    max_vocab: int | None = None
    """keep at most this many most frequent words"""
    memory: str = "1G"
    """GloVe co-occurrence counting memory, e.g. 512M, 2G"""
    x_max: float = 100.0
    """GloVe weighting cut-off"""
    workers: int | None = None
    """threads (None: the machine's cores, at most 8)"""
    seed: int = 1
    """seed of the initial vectors and the sampling"""
    words: str = field(default="words", metadata={"choices": ("words", "whitespace")})
    """word splitter"""
    lowercase: bool = field(default=True, metadata={"negatable": True})
    """fold case first (--no-lowercase keeps it)"""
    overwrite: bool = False
    """replace a run already in --out"""

    def __post_init__(self) -> None:
        for name in ("dim", "min_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        for name in ("window", "epochs", "workers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}.")
        if self.negative < 0 or (self.negative == 0 and not self.hs and self.method != "glove"):
            raise ValueError("--negative must be positive (or 0 together with --hs).")


def parse_memory(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*", text.upper())
    if not match:
        raise InputError(f"--memory {text!r}: write a size such as 512M or 2G.")
    size = float(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)]
    if size < 1 << 20:
        raise InputError(f"--memory {text}: at least 1M.")
    return int(size)


def default_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory; choose another --out.")
    if (out / RUN_CONFIG).exists() and not overwrite:
        raise InputError(f"{out}: already holds a run; choose another --out, or pass --overwrite.")


WORD2VEC_EPOCHS, WORD2VEC_MAX_EPOCHS, WORDS_READ = 5, 20, 10_000_000


def word2vec_epochs(words: int) -> int:
    """Default passes for a corpus of `words` kept words: 5 (word2vec's and gensim's) once the corpus
    holds 2M words, more below so that about 10M words are read, at most 20."""
    return int(min(WORD2VEC_MAX_EPOCHS, max(WORD2VEC_EPOCHS, -(-WORDS_READ // max(words, 1)))))


def train_embeddings(c: EmbedTrainConfig) -> dict:
    """Read the corpus, train the vectors, write the embed run (and its metrics.jsonl); the summary."""
    from lmforge.embeddings.glove import GloVeConfig, count_cooccurrence, train_glove
    from lmforge.embeddings.word2vec import Word2VecConfig, train_word2vec

    _check_out(c.out, c.overwrite)
    glove = c.method == "glove"
    memory = parse_memory(c.memory)
    workers = c.workers or default_threads()
    splitter = WordSplitter(c.words, c.lowercase)
    start = time.perf_counter()
    with tqdm(desc="reading", unit=" words", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
        corpus = encode_corpus(corpus_lines(c.data, "train"), splitter, c.min_count, c.max_vocab, bar.update)
    window = c.window or (10 if glove else 5)
    epochs = c.epochs or (25 if glove else word2vec_epochs(len(corpus.ids)))
    stats: dict = {"words": corpus.raw_words, "kept_words": len(corpus.ids), "vocab_size": len(corpus.words),
                   "sentences": corpus.sentences, "read_seconds": time.perf_counter() - start, "workers": workers}
    if glove:
        with tqdm(desc="co-occurrences", unit=" words", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
            cooc = count_cooccurrence(corpus, window, memory, bar.update)
        stats.update(nonzero=len(cooc.values), spilled_runs=cooc.spilled_runs,
                     count_table_peak_mb=cooc.peak_table_bytes / 1e6)
        config = GloVeConfig(c.dim, window, epochs, c.x_max, eta=c.alpha or 0.05, seed=c.seed)
        with tqdm(total=epochs, desc="glove", unit=" epoch", file=sys.stderr) as bar:
            def show(epoch: int, cost: float) -> None:
                bar.set_postfix(cost=f"{cost:.4f}")
                bar.update(1)
            result = train_glove(corpus, cooc, config, workers, show)
        stats["costs"] = result["costs"]
    else:
        config = Word2VecConfig(c.method, c.dim, window, c.negative, c.hs, c.sample, c.alpha,
                                epochs=epochs, seed=c.seed)
        with tqdm(total=len(corpus.ids) * epochs, desc=c.method, unit=" words", unit_scale=True, file=sys.stderr,
                  mininterval=1.0) as bar:
            result = train_word2vec(corpus, config, workers, bar.update)
        stats["words_per_s"] = result["words_per_s"]
    seconds = time.perf_counter() - start
    stats.update(train_seconds=result["seconds"], seconds=seconds,
                 peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    model = {"method": c.method, "dim": c.dim, "window": window, **splitter.describe(),
             "min_count": c.min_count}
    train = {k: v for k, v in vars(config).items() if k not in ("dim", "window", "method")}
    family = "glove" if glove else "word2vec"
    vectors = WordVectors(corpus.words, result["vectors"], corpus.counts)
    save_embed_run(c.out, vectors, family, source_path(c.data), model, {**train, "epochs": epochs})
    record = {"step": epochs, "tokens": len(corpus.ids) * epochs, "train_time": result["seconds"], **{
        k: v for k, v in stats.items() if k in ("words_per_s", "nonzero")}}
    atomic_write_text(c.out / "metrics.jsonl", json.dumps(record) + "\n")
    return {"out": str(c.out), "method": c.method, "epochs": epochs, **stats}
