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
import os
import re
import resource
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lmforge.embeddings.corpus import encode_corpus
from lmforge.embeddings.evaluate import evaluate_vectors, neighbours
from lmforge.embeddings.plot import plot_vectors
from lmforge.embeddings.vectors import WordVectors, save_embed_run, write_word2vec
from lmforge.errors import InputError
from lmforge.runs import RUN_CONFIG, atomic_write_text, source_path
from lmforge.tokenization.words import WordSplitter, corpus_lines

METHODS = ("skipgram", "cbow", "glove")


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = sub.add_parser("train", help="train word vectors on a prepared dataset or a text file")
    train.add_argument("data", type=Path, help="prepared dataset (lmforge prepare), or a .txt/.txt.gz file")
    train.add_argument("--method", default="skipgram", choices=METHODS)
    train.add_argument("--dim", type=int, default=100, help="vector size (default 100)")
    train.add_argument("--window", type=int, default=None, help="context window (default 5; GloVe 10)")
    train.add_argument("--epochs", type=int, default=None, help="passes (default 5; GloVe 25)")
    train.add_argument("--negative", type=int, default=5, help="negative samples per prediction (word2vec)")
    train.add_argument("--hs", action="store_true", help="hierarchical softmax (with --negative 0: instead of it)")
    train.add_argument("--sample", type=float, default=1e-3, help="subsampling of frequent words (word2vec)")
    train.add_argument("--alpha", type=float, default=None,
                       help="initial learning rate (word2vec: 0.025 skip-gram, 0.05 CBOW; GloVe: 0.05)")
    train.add_argument("--min-count", type=int, default=5, help="ignore words seen fewer times (default 5)")
    train.add_argument("--max-vocab", type=int, default=None, help="keep at most this many most frequent words")
    train.add_argument("--memory", default="1G", help="GloVe co-occurrence counting memory, e.g. 512M, 2G")
    train.add_argument("--x-max", type=float, default=100.0, help="GloVe weighting cut-off")
    train.add_argument("--workers", type=int, default=None, help="threads (default: the machine's cores, at most 8)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--words", default="words", choices=("words", "whitespace"), help="word splitter")
    train.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True,
                       help="fold case first (default: on)")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--overwrite", action="store_true")
    train.add_argument("--json", action="store_true")

    evaluate = sub.add_parser("eval", help="similarity (Spearman) and analogy accuracy on the standard sets")
    evaluate.add_argument("vectors", type=Path, help="embed run, or a word2vec/GloVe vectors file")
    evaluate.add_argument("--similarity", type=Path, action="append", help="your own 'w1<TAB>w2<TAB>score' file")
    evaluate.add_argument("--analogies", type=Path, help="your own analogy file (questions-words.txt layout)")
    evaluate.add_argument("--json", action="store_true")

    near = sub.add_parser("neighbours", aliases=["neighbors"], help="nearest words by cosine similarity")
    near.add_argument("vectors", type=Path)
    near.add_argument("words", nargs="+")
    near.add_argument("--top", type=int, default=10)
    near.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="write vectors in the word2vec text or binary format")
    export.add_argument("vectors", type=Path)
    export.add_argument("--format", default="word2vec-text", choices=("word2vec-text", "word2vec-binary"))
    export.add_argument("--out", type=Path, required=True)

    plot = sub.add_parser("plot", help="2-D map of words (PCA or t-SNE) as a PNG")
    plot.add_argument("vectors", type=Path)
    plot.add_argument("--words-file", type=Path, help="words to show, one a line (default: the 150 most frequent)")
    plot.add_argument("--method", default="pca", choices=("pca", "tsne"))
    plot.add_argument("--out", type=Path, default=Path("embedding_map.png"))


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


def _check(args) -> None:
    for name in ("dim", "min_count"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}.")
    for name in ("window", "epochs", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name} must be at least 1, got {value}.")
    if args.negative < 0 or (args.negative == 0 and not args.hs and args.method != "glove"):
        raise InputError("--negative must be positive (or 0 together with --hs).")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"{args.out}: exists and is not a directory; choose another --out.")
    if (args.out / RUN_CONFIG).exists() and not args.overwrite:
        raise InputError(f"{args.out}: already holds a run; choose another --out, or pass --overwrite.")


def train_embeddings(args) -> dict:
    from lmforge.embeddings.glove import GloVeConfig, count_cooccurrence, train_glove
    from lmforge.embeddings.word2vec import Word2VecConfig, train_word2vec

    _check(args)
    glove = args.method == "glove"
    memory = parse_memory(args.memory)
    workers = args.workers or default_threads()
    splitter = WordSplitter(args.words, args.lowercase)
    start = time.perf_counter()
    with tqdm(desc="reading", unit=" words", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
        corpus = encode_corpus(corpus_lines(args.data, "train"), splitter, args.min_count, args.max_vocab, bar.update)
    window = args.window or (10 if glove else 5)
    epochs = args.epochs or (25 if glove else 5)
    stats: dict = {"words": corpus.raw_words, "kept_words": len(corpus.ids), "vocab_size": len(corpus.words),
                   "sentences": corpus.sentences, "read_seconds": time.perf_counter() - start, "workers": workers}
    if glove:
        with tqdm(desc="co-occurrences", unit=" words", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
            cooc = count_cooccurrence(corpus, window, memory, bar.update)
        stats.update(nonzero=len(cooc.values), spilled_runs=cooc.spilled_runs,
                     count_table_peak_mb=cooc.peak_table_bytes / 1e6)
        config = GloVeConfig(args.dim, window, epochs, args.x_max, eta=args.alpha or 0.05, seed=args.seed)
        with tqdm(total=epochs, desc="glove", unit=" epoch", file=sys.stderr) as bar:
            def show(epoch: int, cost: float) -> None:
                bar.set_postfix(cost=f"{cost:.4f}")
                bar.update(1)
            result = train_glove(corpus, cooc, config, workers, show)
        stats["costs"] = result["costs"]
    else:
        config = Word2VecConfig(args.method, args.dim, window, args.negative, args.hs, args.sample, args.alpha,
                                epochs=epochs, seed=args.seed)
        with tqdm(total=len(corpus.ids) * epochs, desc=args.method, unit=" words", unit_scale=True, file=sys.stderr,
                  mininterval=1.0) as bar:
            result = train_word2vec(corpus, config, workers, bar.update)
        stats["words_per_s"] = result["words_per_s"]
    seconds = time.perf_counter() - start
    stats.update(train_seconds=result["seconds"], seconds=seconds,
                 peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    model = {"method": args.method, "dim": args.dim, "window": window, **splitter.describe(),
             "min_count": args.min_count}
    train = {k: v for k, v in vars(config).items() if k not in ("dim", "window", "method")}
    family = "glove" if glove else "word2vec"
    vectors = WordVectors(corpus.words, result["vectors"], corpus.counts)
    save_embed_run(args.out, vectors, family, source_path(args.data), model, {**train, "epochs": epochs})
    record = {"step": epochs, "tokens": len(corpus.ids) * epochs, "train_time": result["seconds"], **{
        k: v for k, v in stats.items() if k in ("words_per_s", "nonzero")}}
    atomic_write_text(args.out / "metrics.jsonl", json.dumps(record) + "\n")
    return {"out": str(args.out), "method": args.method, **stats}


def _train(args) -> int:
    result = train_embeddings(args)
    speed = f", {result['words_per_s']:,.0f} words/s" if "words_per_s" in result else \
        f", {result['nonzero']:,} co-occurrences, final cost {result['costs'][-1]:.4f}"
    print(f"embed: {result['method']} on {result['kept_words']:,} words ({result['vocab_size']:,} in the vocabulary)"
          f"{speed}, {result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB -> {result['out']}",
          file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0


def _vectors(path: Path) -> WordVectors:
    from lmforge.embeddings.vectors import read_vectors

    return read_vectors(path)


def _eval(args) -> int:
    vectors = _vectors(args.vectors)
    files = {Path(p).stem: Path(p) for p in args.similarity} if args.similarity else None
    result = evaluate_vectors(vectors, files, args.analogies)
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
    if args.json:
        print(json.dumps({"vectors": str(args.vectors), **result}))
    return 0


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _neighbours(args) -> int:
    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}.")
    vectors = _vectors(args.vectors)
    out = {}
    for word in args.words:
        found = neighbours(vectors, word, args.top)
        out[word] = found
        if found is None:
            print(f"{word}: not in the vocabulary", file=sys.stderr)
        elif not args.json:
            print(f"{word}: " + ", ".join(f"{w} {s:.3f}" for w, s in found))
    if args.json:
        print(json.dumps({w: None if n is None else [{"word": x, "cosine": s} for x, s in n] for w, n in out.items()},
                         ensure_ascii=False))
    return 0


def _export(args) -> int:
    vectors = _vectors(args.vectors)
    write_word2vec(vectors, args.out, binary=args.format == "word2vec-binary")
    print(f"embed: wrote {len(vectors.words):,} vectors of {vectors.dim} to {args.out} ({args.format})",
          file=sys.stderr)
    return 0


def _plot(args) -> int:
    vectors = _vectors(args.vectors)
    words = None
    if args.words_file is not None:
        try:
            words = [w.strip() for w in args.words_file.read_text(encoding="utf-8").splitlines() if w.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"{args.words_file}: cannot read words ({error}).") from None
    shown, missing = plot_vectors(vectors, words, args.method, args.out)
    print(f"embed: {shown} words on {args.out} ({args.method})" + (f"; not in the vocabulary: {', '.join(missing[:10])}"
                                                                   if missing else ""), file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    actions = {"train": _train, "eval": _eval, "neighbours": _neighbours, "neighbors": _neighbours, "export": _export,
               "plot": _plot}
    return actions[args.action](args)
