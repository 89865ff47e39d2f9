"""Building n-gram runs as `lmforge ngram train` does: count a corpus (in one process, in worker processes,
or in --rank parts merged later), estimate the smoothed tables, save the run and evaluate it on the
dataset's val split. A notebook calls `build_ngram(NgramTrainConfig(data=[...], out=...))`."""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lmforge.artifacts import atomic_write_text
from lmforge.errors import InputError
from lmforge.ngram.counting import ChunkCounts, CountMerger, count_corpus, default_workers
from lmforge.ngram.estimate import SMOOTHINGS, estimate
from lmforge.ngram.evaluate import evaluate_ngram
from lmforge.ngram.store import COUNTS, load_ngram_run, load_partial_counts, save_ngram_run, save_partial_counts
from lmforge.runs import RUN_CONFIG, source_path
from lmforge.tokenization.words import WordSplitter, corpus_lines

MAX_ORDER = 9


@dataclass
class WordsConfig:
    """What a word is: the splitter an n-gram run counts with."""

    words: str = field(default="words", metadata={"choices": ("words", "whitespace")})
    """word splitter: words (letters/digits, punctuation alone, CJK by character) or whitespace (pre-tokenized
    text)"""
    tokenizer: Path | None = None
    """count a trained tokenizer's tokens instead of words"""
    lowercase: bool = False
    """fold case before splitting"""

    def splitter(self) -> WordSplitter:
        if self.tokenizer is not None:
            from lmforge.tokenization.tokenizer import Tokenizer

            return WordSplitter("tokenizer", False, Tokenizer(self.tokenizer))
        return WordSplitter(self.words, self.lowercase)


@dataclass
class NgramTrainConfig(WordsConfig):
    data: list[Path] = field(default_factory=list, metadata={"positional": True})
    """prepared dataset (lmforge prepare), or a .txt/.txt.gz file with a sentence a line; with --merge: the --out
    folders of the --rank parts"""
    out: Path = field(default=Path("."), metadata={"required": True})
    """run directory to create"""
    order: int = 3
    """n-gram order, 1..9"""
    smoothing: str = field(default="kneser-ney", metadata={"choices": SMOOTHINGS})
    """interpolated modified Kneser-Ney, Witten-Bell, or add-k"""
    add_k: float = 1.0
    """k of add-k smoothing (1: Laplace)"""
    prune: list[int] | None = field(default=None, metadata={"metavar": "T"})
    """per order, drop n-grams whose (adjusted) count is <= T, e.g. 0 0 1 (unigrams: 0)"""
    min_count: int = 1
    """words seen fewer times become <unk> (1: keep every word, as lmplz does)"""
    workers: int | None = None
    """counting processes (None: 1 on a machine of 2 cores or fewer)"""
    rank: int | None = None
    """count only every world-size-th sentence from this one, and save the counts to merge"""
    world_size: int | None = None
    """number of --rank parts"""
    merge: bool = False
    """merge the counts of --rank parts, then estimate"""
    overwrite: bool = False
    """replace an existing run directory's model"""


def build_ngram(c: NgramTrainConfig) -> dict:
    """What `ngram train` does with `c`: one run, a counted part, or the merge of parts."""
    if c.merge:
        return merge_ngram_parts(c.data, c.out, c.smoothing, c.prune, c.min_count, c.add_k, c.overwrite)
    if c.rank is not None or c.world_size is not None:
        return count_part(c)
    if len(c.data) != 1:
        raise InputError("ngram train: give one dataset or text file (several only with --merge).")
    return train_ngram(c.data[0], c.out, c.order, c.smoothing, c.prune, c.splitter(), c.min_count, c.workers,
                       c.add_k, c.overwrite)


def check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory; choose another --out.")
    if (out / RUN_CONFIG).exists() and not overwrite:
        raise InputError(f"{out}: already holds a run; choose another --out, or pass --overwrite to replace it.")


def train_ngram(data: Path, out: Path, order: int = 3, smoothing: str = "kneser-ney", prune=None,
                splitter: WordSplitter | None = None, min_count: int = 1, workers: int | None = None,
                add_k: float = 1.0, overwrite: bool = False) -> dict:
    """Count, estimate, save, and evaluate on the dataset's val split when it has one."""
    if not 1 <= order <= MAX_ORDER:
        raise InputError(f"--order {order}: must be between 1 and {MAX_ORDER}.")
    if min_count < 1:
        raise InputError(f"--min-count must be at least 1, got {min_count}.")
    if smoothing == "add-k" and add_k <= 0:
        raise InputError(f"--add-k must be positive, got {add_k}.")
    splitter = splitter or WordSplitter()
    out = Path(out)
    check_out(out, overwrite)
    start = time.perf_counter()
    with tqdm(desc="counting", unit=" words", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
        counts = count_corpus(corpus_lines(data, "train"), splitter, order, workers or default_workers(),
                              min_count, bar.update)
    if counts.tokens == 0:
        raise InputError(f"{data}: no words in the train text; prepare a non-empty corpus.")
    if len(counts.vocab) <= 3:
        raise InputError(f"{data}: every word is under --min-count {min_count}: the vocabulary is empty; "
                         "lower --min-count or give more text.")
    count_seconds = time.perf_counter() - start
    tables = estimate(counts, smoothing, prune, add_k)
    seconds = time.perf_counter() - start
    model_section = {"smoothing": smoothing, "min_count": min_count, "discounts": tables.meta["discounts"],
                     "prune": tables.meta["prune"], "add_k": tables.meta["add_k"]}
    train_section = {"sentences": counts.sentences, "tokens": counts.tokens, "unk_tokens": counts.unk_tokens,
                     "seconds": round(seconds, 3), "count_seconds": round(count_seconds, 3)}
    save_ngram_run(out, tables, splitter, source_path(data), model_section, train_section)
    result = {"out": str(out), "order": order, "smoothing": smoothing, "ngrams": tables.counts(),
              "vocab_size": tables.vocab_size, "sentences": counts.sentences, "tokens": counts.tokens,
              "seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "discounts": tables.meta["discounts"]}
    if Path(data).is_dir():
        from lmforge.ngram.evaluate import val_identity

        if (val_identity(data) or (0, 0))[1]:
            evaluation = evaluate_ngram(load_ngram_run(out), Path(data), "val")
            result["val"] = evaluation
            record = {"step": 0, "tokens": counts.tokens, "train_time": seconds, "val_loss": evaluation["val_loss"],
                      "val_perplexity": evaluation["perplexity"], "bits_per_byte": evaluation["bits_per_byte"]}
            atomic_write_text(out / "metrics.jsonl", json.dumps(record) + "\n")
    return result


def count_part(c: NgramTrainConfig) -> dict:
    """`--rank r --world-size w`: count sentences r, r + w, r + 2w, ... of the corpus into --out."""
    rank, world = c.rank, c.world_size
    if rank is None or world is None or not 0 <= rank < world:
        raise InputError(f"--rank {rank} --world-size {world}: give both, with 0 <= rank < world-size.")
    if not 1 <= c.order <= MAX_ORDER:
        raise InputError(f"--order {c.order}: must be between 1 and {MAX_ORDER}.")
    if len(c.data) != 1:
        raise InputError("ngram train --rank: give one dataset or text file.")
    if (c.out / COUNTS).exists() and not c.overwrite:
        raise InputError(f"{c.out}: already holds counts; choose another --out, or pass --overwrite.")
    splitter = c.splitter()
    lines = (line for number, line in enumerate(corpus_lines(c.data[0], "train")) if number % world == rank)
    start = time.perf_counter()
    with tqdm(desc=f"counting part {rank}/{world}", unit=" words", unit_scale=True, file=sys.stderr,
              mininterval=1.0) as bar:
        counts = count_corpus(lines, splitter, c.order, c.workers or default_workers(), 1, bar.update)
    save_partial_counts(c.out, counts, c.order, splitter, str(c.data[0]), rank, world)
    return {"out": str(c.out), "rank": rank, "world_size": world, "tokens": counts.tokens,
            "ngrams": len(counts.rows), "order": c.order, "seconds": time.perf_counter() - start}


def merge_ngram_parts(parts: list[Path], out: Path, smoothing: str = "kneser-ney", prune=None, min_count: int = 1,
                      add_k: float = 1.0, overwrite: bool = False) -> dict:
    """Sum the counts of every --rank part (all of them, one order, one word splitter), then estimate."""
    out = Path(out)
    check_out(out, overwrite)
    start = time.perf_counter()
    metas = []
    merger = None
    for part in parts:
        meta, arrays = load_partial_counts(part)
        if metas and (meta["order"], meta["splitter"], meta["world_size"]) != \
                (metas[0]["order"], metas[0]["splitter"], metas[0]["world_size"]):
            raise InputError(f"{part}: counted with another order, word splitter or world size than {parts[0]}; "
                             "merge parts of one run.")
        if meta["splitter"]["words"] == "tokenizer":
            raise InputError(f"{part}: parts counted over a tokenizer's tokens cannot be merged yet; count those "
                             "in one process (--workers for speed).")
        metas.append(meta)
        merger = merger or CountMerger(meta["order"])
        merger.add(ChunkCounts(meta["vocab"], arrays["word_counts"], arrays["rows"], arrays["counts"],
                               meta["sentences"], meta["tokens"]))
    ranks = sorted(m["rank"] for m in metas)
    world = metas[0]["world_size"]
    if ranks != list(range(world)):
        missing = sorted(set(range(world)) - set(ranks))
        raise InputError(f"--merge: parts of ranks {ranks} given, world size {world}: ranks {missing} are missing "
                         "(or given twice); merge every part once.")
    counts = merger.finish(min_count)
    tables = estimate(counts, smoothing, prune, add_k)
    splitter = WordSplitter(metas[0]["splitter"]["words"], metas[0]["splitter"]["lowercase"])
    seconds = time.perf_counter() - start
    save_ngram_run(out, tables, splitter, metas[0]["corpus"],
                   {"smoothing": smoothing, "min_count": min_count, "discounts": tables.meta["discounts"],
                    "prune": tables.meta["prune"], "add_k": tables.meta["add_k"]},
                   {"sentences": counts.sentences, "tokens": counts.tokens, "parts": len(parts), "merge_seconds":
                    round(seconds, 3)})
    return {"out": str(out), "order": tables.order, "smoothing": smoothing, "ngrams": tables.counts(),
            "vocab_size": tables.vocab_size, "sentences": counts.sentences, "tokens": counts.tokens,
            "seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "discounts": tables.meta["discounts"], "parts": len(parts)}
