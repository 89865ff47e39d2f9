"""`lmforge ngram`: count-based n-gram language models (interpolated modified Kneser-Ney by default, as
KenLM's `lmplz`; Witten-Bell and add-k for comparison), ARPA export/import and KenLM-style scoring.

Examples (CPU, seconds):
    lmforge ngram train data/kjv --order 5 --out runs/kn5
    lmforge ngram train data/kjv --order 3 --tokenizer tokenizers/bpe8k --out runs/kn3bpe
    lmforge ngram train corpus.txt.gz --words whitespace --order 5 --prune 0 0 1 1 2 --out runs/kn5p
    lmforge ngram train data/big --order 5 --rank 0 --world-size 2 --out parts/0     # one machine (or process) each
    lmforge ngram train --merge parts/0 parts/1 --out runs/kn5big
    lmforge eval --run runs/kn5 --json
    lmforge ngram export runs/kn5 --arpa runs/kn5/model.arpa
    lmforge ngram import model.arpa --out runs/from_arpa
    lmforge ngram score runs/kn5 "In the beginning"
    lmforge generate --run runs/kn5 --max-new-tokens 50
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lmforge.errors import InputError
from lmforge.ngram.arpa import read_arpa, write_arpa
from lmforge.ngram.counting import ChunkCounts, CountMerger, count_corpus, default_workers
from lmforge.ngram.estimate import SMOOTHINGS, estimate
from lmforge.ngram.evaluate import evaluate_ngram
from lmforge.ngram.store import COUNTS, load_ngram_run, load_partial_counts, save_ngram_run, save_partial_counts
from lmforge.runs import RUN_CONFIG, atomic_write_text, source_path
from lmforge.tokenization.words import WordSplitter, corpus_lines

MAX_ORDER = 9


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = sub.add_parser("train", help="count a corpus and estimate a model")
    train.add_argument("data", type=Path, nargs="+",
                       help="prepared dataset (lmforge prepare), or a .txt/.txt.gz file with a sentence a line; "
                            "with --merge: the --out folders of the --rank parts")
    train.add_argument("--order", type=int, default=3, help="n-gram order, 1..9 (default 3)")
    train.add_argument("--smoothing", default="kneser-ney", choices=SMOOTHINGS,
                       help="interpolated modified Kneser-Ney (default), Witten-Bell, or add-k")
    train.add_argument("--add-k", type=float, default=1.0, help="k of add-k smoothing (default 1: Laplace)")
    train.add_argument("--prune", type=int, nargs="+", metavar="T",
                       help="per order, drop n-grams whose (adjusted) count is <= T, e.g. 0 0 1 (unigrams: 0)")
    _add_words_arguments(train)
    train.add_argument("--min-count", type=int, default=1,
                       help="words seen fewer times become <unk> (default 1: keep every word, as lmplz does)")
    train.add_argument("--workers", type=int, default=None,
                       help="counting processes (default: 1 on a machine of 2 cores or fewer)")
    train.add_argument("--rank", type=int, default=None,
                       help="count only every world-size-th sentence from this one, and save the counts to merge")
    train.add_argument("--world-size", type=int, default=None, help="number of --rank parts")
    train.add_argument("--merge", action="store_true", help="merge the counts of --rank parts, then estimate")
    train.add_argument("--out", type=Path, required=True, help="run directory to create")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory's model")
    train.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    export = sub.add_parser("export", help="write a run as an ARPA file (.arpa or .arpa.gz)")
    export.add_argument("run", type=Path)
    export.add_argument("--arpa", type=Path, required=True, help="output file")

    imp = sub.add_parser("import", help="load an ARPA file (e.g. from KenLM) into a run directory")
    imp.add_argument("arpa", type=Path)
    imp.add_argument("--out", type=Path, required=True)
    imp.add_argument("--overwrite", action="store_true")
    _add_words_arguments(imp)

    score = sub.add_parser("score", help="log10 probability per word, like KenLM's query")
    score.add_argument("run", type=Path)
    score.add_argument("text", nargs="*", help="sentences to score (one each)")
    score.add_argument("--input", type=Path, help="score every line of this file instead")
    score.add_argument("--json", action="store_true", help="one JSON object instead of the per-word lines")


def _add_words_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--words", default="words", choices=("words", "whitespace"),
                        help="word splitter: words (letters/digits, punctuation alone, CJK by character) or "
                             "whitespace (pre-tokenized text)")
    parser.add_argument("--tokenizer", type=Path, help="count a trained tokenizer's tokens instead of words")
    parser.add_argument("--lowercase", action="store_true", help="fold case before splitting")


def _splitter(args) -> WordSplitter:
    if args.tokenizer is not None:
        from lmforge.tokenization.tokenizer import Tokenizer

        return WordSplitter("tokenizer", False, Tokenizer(args.tokenizer))
    return WordSplitter(args.words, args.lowercase)


def _check_out(out: Path, overwrite: bool) -> None:
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
    _check_out(out, overwrite)
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


def _train(args) -> int:
    if args.merge:
        result = merge_ngram_parts(args.data, args.out, args.smoothing, args.prune, args.min_count, args.add_k,
                                   args.overwrite)
    elif args.rank is not None or args.world_size is not None:
        return _count_part(args)
    else:
        if len(args.data) != 1:
            raise InputError("ngram train: give one dataset or text file (several only with --merge).")
        result = train_ngram(args.data[0], args.out, args.order, args.smoothing, args.prune, _splitter(args),
                             args.min_count, args.workers, args.add_k, args.overwrite)
    grams = ", ".join(f"{n}-grams {c:,}" for n, c in enumerate(result["ngrams"], start=1))
    print(f"ngram: {result['tokens']:,} words in {result['sentences']:,} sentences -> {grams} "
          f"({result['smoothing']}) in {result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB -> "
          f"{result['out']}", file=sys.stderr)
    if "val" in result:
        val = result["val"]
        print(f"val: perplexity {val['perplexity']:.2f} ({val['perplexity_excluding_oov']:.2f} without OOV, "
              f"{100 * val['oov_rate']:.2f}% OOV), {val['bits_per_byte']:.4f} bits/byte", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0


def _count_part(args) -> int:
    """`--rank r --world-size w`: count sentences r, r + w, r + 2w, ... of the corpus into --out."""
    rank, world = args.rank, args.world_size
    if rank is None or world is None or not 0 <= rank < world:
        raise InputError(f"--rank {rank} --world-size {world}: give both, with 0 <= rank < world-size.")
    if not 1 <= args.order <= MAX_ORDER:
        raise InputError(f"--order {args.order}: must be between 1 and {MAX_ORDER}.")
    if len(args.data) != 1:
        raise InputError("ngram train --rank: give one dataset or text file.")
    if (args.out / COUNTS).exists() and not args.overwrite:
        raise InputError(f"{args.out}: already holds counts; choose another --out, or pass --overwrite.")
    splitter = _splitter(args)
    lines = (line for number, line in enumerate(corpus_lines(args.data[0], "train")) if number % world == rank)
    start = time.perf_counter()
    with tqdm(desc=f"counting part {rank}/{world}", unit=" words", unit_scale=True, file=sys.stderr,
              mininterval=1.0) as bar:
        counts = count_corpus(lines, splitter, args.order, args.workers or default_workers(), 1, bar.update)
    save_partial_counts(args.out, counts, args.order, splitter, str(args.data[0]), rank, world)
    print(f"ngram: part {rank} of {world}: {counts.tokens:,} words, {len(counts.rows):,} {args.order}-grams in "
          f"{time.perf_counter() - start:.1f} s -> {args.out} (merge with: lmforge ngram train --merge PARTS... "
          "--out RUN)", file=sys.stderr)
    return 0


def merge_ngram_parts(parts: list[Path], out: Path, smoothing: str = "kneser-ney", prune=None, min_count: int = 1,
                      add_k: float = 1.0, overwrite: bool = False) -> dict:
    """Sum the counts of every --rank part (all of them, one order, one word splitter), then estimate."""
    out = Path(out)
    _check_out(out, overwrite)
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


def _export(args) -> int:
    run = load_ngram_run(args.run)
    write_arpa(run.model.tables, args.arpa)
    print(f"ngram: wrote {args.arpa} ({', '.join(map(str, run.model.tables.counts()))} n-grams)", file=sys.stderr)
    return 0


def _import(args) -> int:
    _check_out(args.out, args.overwrite)
    tables = read_arpa(args.arpa)
    save_ngram_run(args.out, tables, _splitter(args), source_path(args.arpa), {"smoothing": "imported"},
                   {"imported_from": str(args.arpa)})
    print(f"ngram: imported {args.arpa}: order {tables.order}, {tables.vocab_size:,} words, "
          f"{', '.join(map(str, tables.counts()))} n-grams -> {args.out}", file=sys.stderr)
    return 0


def _score(args) -> int:
    run = load_ngram_run(args.run)
    if args.input is not None:
        lines = list(corpus_lines(args.input))
    elif args.text:
        lines = args.text
    else:
        raise InputError("ngram score: give sentences to score, or --input FILE.")
    sentences = list(run.splitter.sentences(lines))
    scored = run.model.score_sentences(sentences)
    summary = scored.summary()
    if args.json:
        words = [w for s in sentences for w in [*s, "</s>"]]
        print(json.dumps({**summary, "words": [{"word": w, "log10_prob": float(p), "ngram_length": int(m)}
                                               for w, p, m in zip(words, scored.logp, scored.matched)]},
                         ensure_ascii=False))
        return 0
    at = 0
    for words in sentences:
        parts = []
        for word in [*words, "</s>"]:
            index = run.model.index.get(word, 0)
            parts.append(f"{word}={index} {scored.matched[at]} {scored.logp[at]:.6g}")
            at += 1
        total = float(scored.logp[at - len(words) - 1:at].sum())
        print("\t".join(parts) + f"\tTotal: {total:.6g} OOV: {sum(run.model.index.get(w) is None for w in words)}")
    print(f"Perplexity including OOVs:\t{summary['perplexity']:.6g}\n"
          f"Perplexity excluding OOVs:\t{summary['perplexity_excluding_oov']:.6g}\n"
          f"OOVs:\t{summary['oov_tokens']}\nTokens:\t{summary['predicted_tokens']}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"train": _train, "export": _export, "import": _import, "score": _score}[args.action](args)
