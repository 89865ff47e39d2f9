"""Word vectors: `lmforge embed train` (word2vec skip-gram and CBOW, GloVe) against gensim 4.x's Word2Vec
with the same settings, corpus, epochs and workers, in one run. Reports training words/s (raw words
read per second of training, both sides), and similarity (Spearman on WordSim-353, SimLex-999) and
analogy accuracy (Google set, top 30k words, 3CosAdd) of both, all scored by the same evaluator; gensim's
own evaluate_word_pairs / evaluate_word_analogies on its vectors as a cross-check of that evaluator.
The initial learning rates differ by default for CBOW (lmforge 0.05 as word2vec.c, gensim 0.025 for both
methods), so CBOW runs three ways: each at its own default, and both at 0.05, and both at 0.025.
Corpus: the State of the Union speeches (1.6M words), through the KenLM reference tokenization.
    python bench/word_vectors.py [--epochs 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import machine
from ngram_kenlm import WORK, sotu_files

SETTINGS = ["--dim", "100", "--window", "5", "--negative", "5", "--sample", "1e-3", "--min-count", "5"]


def lmforge(*args) -> tuple[dict, float, float]:
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "lmforge", *map(str, args)],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout), time.perf_counter() - start, int(done.stderr.strip().splitlines()[-1]) / 1e6


def gensim_run(train: Path, sg: int, epochs: int, workers: int, out: Path, alpha: float = 0.025) -> dict:
    from gensim.models import Word2Vec

    sentences = []
    for line in train.read_text().splitlines():
        words = line.split()
        sentences += [words[i:i + 10_000] for i in range(0, len(words), 10_000)]   # as LineSentence does
    words = sum(map(len, sentences))
    model = Word2Vec(vector_size=100, window=5, negative=5, sample=1e-3, min_count=5, sg=sg, workers=workers,
                     epochs=epochs, seed=1, alpha=alpha)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - start
    model.wv.save_word2vec_format(str(out), binary=True)
    from gensim.test.utils import datapath

    own = {"wordsim353": model.wv.evaluate_word_pairs(datapath("wordsim353.tsv"))[1].statistic,
           "simlex999": model.wv.evaluate_word_pairs(datapath("simlex999.txt"))[1].statistic,
           "analogy": model.wv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=30_000)[0]}
    return {"words_per_s": words * epochs / seconds, "seconds": seconds, "gensim_own_eval": own}


def scores(vectors: Path) -> dict:
    result, _, _ = lmforge("embed", "eval", vectors, "--json")
    return {"wordsim353": result["wordsim353"]["spearman"], "simlex999": result["simlex999"]["spearman"],
            "analogy": result["analogy"]["accuracy_3cosadd"], "analogy_3cosmul": result["analogy"]["accuracy_3cosmul"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", default="skipgram,cbow,glove", help="comma-separated subset to run")
    args = parser.parse_args()
    methods = args.methods.split(",")
    train, _ = sotu_files()
    rows = []
    # (method, lmforge --alpha, gensim alpha, what the pair is)
    settings = [("skipgram", None, 0.025, "both defaults (0.025)"), ("cbow", None, 0.025, "own defaults: 0.05 / 0.025"),
                ("cbow", None, 0.05, "both 0.05 (lmforge's default)"), ("cbow", 0.025, 0.025, "both 0.025 (gensim's)")]
    for method, ours_alpha, gensim_alpha, label in settings:
        if method not in methods:
            continue
        sg = 1 if method == "skipgram" else 0
        run = WORK / f"w2v_{method}_{ours_alpha}"
        alpha_flag = ["--alpha", ours_alpha] if ours_alpha is not None else []
        ours, wall, rss = lmforge("embed", "train", train, "--words", "whitespace", "--method", method, *SETTINGS,
                                  *alpha_flag, "--epochs", args.epochs, "--workers", args.workers, "--out", run,
                                  "--overwrite", "--json")
        vectors = WORK / f"gensim_{method}_{gensim_alpha}.bin"
        theirs = gensim_run(train, sg, args.epochs, args.workers, vectors, gensim_alpha)
        row = {"method": method, "learning_rates": label, "lmforge_words_per_s": ours["words_per_s"],
               "gensim_words_per_s": theirs["words_per_s"], "lmforge_wall_s": wall, "lmforge_rss_gb": rss,
               "lmforge": scores(run),
               "gensim": scores(vectors), "gensim_own_eval": theirs["gensim_own_eval"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    glove_rows = []
    for memory in ("1G", "16M") if "glove" in methods else ():
        run = WORK / f"glove_{memory}"
        ours, wall, rss = lmforge("embed", "train", train, "--words", "whitespace", "--method", "glove", "--dim", "100",
                                  "--window", "10", "--min-count", "5", "--epochs", 25, "--workers", args.workers,
                                  "--memory", memory, "--out", run, "--overwrite", "--json")
        glove_rows.append({"memory": memory, "wall_s": wall, "rss_gb": rss, "nonzero": ours["nonzero"],
                           "spilled_runs": ours["spilled_runs"], "table_peak_mb": ours["count_table_peak_mb"],
                           "scores": scores(run)})
        print(json.dumps(glove_rows[-1]), flush=True)
    print(f"\n{machine()}; {args.epochs} epochs, {args.workers} workers, SOTU 1.6M words")
    print(f"{'method':<9} {'learning rates':<30} {'lmforge w/s':>12} {'gensim w/s':>11} {'ratio':>6}   "
          f"{'WS353 ours/gensim':>18} {'SimLex ours/gensim':>19} {'analogy ours/gensim':>20}")
    for r in rows:
        a, b = r["lmforge"], r["gensim"]
        print(f"{r['method']:<9} {r['learning_rates']:<30} {r['lmforge_words_per_s']:>12,.0f} "
              f"{r['gensim_words_per_s']:>11,.0f} "
              f"{r['lmforge_words_per_s'] / r['gensim_words_per_s']:>6.2f}   "
              f"{a['wordsim353']:>8.3f}/{b['wordsim353']:<9.3f} "
              f"{a['simlex999']:>9.3f}/{b['simlex999']:<9.3f} {100 * a['analogy']:>8.2f}%/{100 * b['analogy']:.2f}%")
    for g in glove_rows:
        s = g["scores"]
        print(f"glove --memory {g['memory']}: WS353 {s['wordsim353']:.3f}, SimLex {s['simlex999']:.3f}, analogy "
              f"{100 * s['analogy']:.2f}%; {g['nonzero']:,} co-occurrences, {g['spilled_runs']} runs spilled, counting "
              f"table peak {g['table_peak_mb']:.0f} MB, process RSS {g['rss_gb']:.2f} GB, {g['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
