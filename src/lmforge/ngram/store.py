"""An n-gram run directory: config.toml (the run contract), vocab.json, ngram.safetensors, and the
tokenizer.json when the words are a trained tokenizer's tokens."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.artifacts import read_json, save_arrays, write_json
from lmforge.errors import InputError
from lmforge.ngram.model import NgramModel
from lmforge.ngram.tables import NgramTables
from lmforge.runs import RunConfig, open_run, write_run
from lmforge.tokenization.words import WordSplitter

WEIGHTS = "ngram.safetensors"
VOCAB = "vocab.json"
FAMILY = "ngram"


@dataclass
class NgramRun:
    model: NgramModel
    splitter: WordSplitter
    run: RunConfig
    config: dict


def save_ngram_run(out: Path, tables: NgramTables, splitter: WordSplitter, corpus: str, model_section: dict,
                   train_section: dict) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for n in range(1, tables.order + 1):
        if n > 1:
            tensors[f"keys.{n}"] = tables.keys[n - 1]
        tensors[f"logp.{n}"] = tables.logp[n - 1]
        tensors[f"backoff.{n}"] = tables.backoff[n - 1]
    save_arrays(out / WEIGHTS, tensors, "ngram")
    write_json(out / VOCAB, tables.vocab)
    tokenizer_sha = ""
    if splitter.tokenizer is not None:
        shutil.copyfile(splitter.tokenizer.path, out / "tokenizer.json")
        tokenizer_sha = splitter.tokenizer.sha256
    run = RunConfig(FAMILY, "", "counts", "", tokenizer_sha, corpus=corpus, kind="ngram")
    model = {"order": tables.order, "vocab_size": tables.vocab_size, **splitter.describe(), **model_section,
             "ngrams": tables.counts()}
    write_run(out, run, {"model": model, "train": train_section})


def load_ngram_run(run_dir: Path) -> NgramRun:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    run = open_run(run_dir).require("ngram", "ngram")
    run_dir, config = run.path, run.sections
    order = int(config.get("model", {}).get("order", 0))
    vocab = read_json(run_dir / VOCAB, "n-gram vocabulary")
    try:
        tensors = load_file(str(run_dir / WEIGHTS))
        keys = [np.arange(len(vocab), dtype=np.uint64)] + [tensors[f"keys.{n}"] for n in range(2, order + 1)]
        logp = [tensors[f"logp.{n}"] for n in range(1, order + 1)]
        backoff = [tensors[f"backoff.{n}"] for n in range(1, order + 1)]
    except (FileNotFoundError, SafetensorError, KeyError) as error:
        raise InputError(f"{run_dir / WEIGHTS}: missing or damaged n-gram tables ({error}); train the run again "
                         "(lmforge ngram train).") from None
    if len(logp[0]) != len(vocab):
        raise InputError(f"{run_dir / VOCAB}: {len(vocab)} words but {len(logp[0])} unigrams; the run directory "
                         "was mixed up.")
    model_section = config.get("model", {})
    tokenizer = None
    if (run_dir / "tokenizer.json").exists() and model_section.get("words") == "tokenizer":
        from lmforge.tokenization.tokenizer import Tokenizer

        tokenizer = Tokenizer(run_dir)
    splitter = WordSplitter(model_section.get("words", "words"), bool(model_section.get("lowercase", False)),
                            tokenizer)
    meta = {k: model_section.get(k) for k in ("smoothing", "discounts", "prune")}
    return NgramRun(NgramModel(NgramTables(vocab, keys, logp, backoff, meta)), splitter, run.contract, config)


COUNTS = "counts.safetensors"
COUNTS_META = "counts.json"


def save_partial_counts(out: Path, counts, order: int, splitter: WordSplitter, corpus: str, rank: int,
                        world_size: int) -> None:
    """One rank's highest-order counts over its own word ids (words in vocab order), to be merged."""
    save_arrays(Path(out) / COUNTS, {"rows": counts.rows, "counts": counts.counts,
                                     "word_counts": counts.word_counts}, "ngram-counts")
    write_json(out / COUNTS_META, {"format": "lmforge.ngram-counts", "version": 1, "order": order,
                                   "rank": rank, "world_size": world_size, "corpus": corpus,
                                   "sentences": counts.sentences, "tokens": counts.tokens,
                                   "splitter": splitter.describe(), "vocab": counts.vocab})


def load_partial_counts(folder: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    meta = read_json(folder / COUNTS_META, "n-gram counts")
    try:
        arrays = load_file(str(folder / COUNTS))
    except (FileNotFoundError, SafetensorError) as error:
        raise InputError(f"{folder / COUNTS}: missing or damaged counts ({error}); count this part again.") from None
    return meta, arrays
