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
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.config import add_actions, config_from_args
from lmforge.errors import InputError
from lmforge.ngram.arpa import read_arpa, write_arpa
from lmforge.ngram.store import load_ngram_run, save_ngram_run
from lmforge.ngram.train import NgramTrainConfig, WordsConfig, build_ngram, check_out
from lmforge.runs import source_path
from lmforge.tokenization.words import corpus_lines


@dataclass
class ExportConfig:
    run: Path = field(default=Path("."), metadata={"positional": True})
    """n-gram run directory"""
    arpa: Path = field(default=Path("."), metadata={"required": True})
    """output file (.arpa or .arpa.gz)"""


@dataclass
class ImportConfig(WordsConfig):
    arpa: Path = field(default=Path("."), metadata={"positional": True})
    """ARPA file (e.g. from KenLM's lmplz)"""
    out: Path = field(default=Path("."), metadata={"required": True})
    """run directory to create"""
    overwrite: bool = False
    """replace an existing run directory's model"""


@dataclass
class ScoreConfig:
    run: Path = field(default=Path("."), metadata={"positional": True})
    """n-gram run directory"""
    text: list[str] = field(default_factory=list, metadata={"positional": True, "nargs": "*"})
    """sentences to score (one each)"""
    input: Path | None = None
    """score every line of this file instead"""


ACTIONS = {"train": (NgramTrainConfig, "count a corpus and estimate a model"),
           "export": (ExportConfig, "write a run as an ARPA file (.arpa or .arpa.gz)"),
           "import": (ImportConfig, "load an ARPA file (e.g. from KenLM) into a run directory"),
           "score": (ScoreConfig, "log10 probability per word, like KenLM's query")}


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_actions(parser, ACTIONS, json_actions=("train", "score"))


def _train(c: NgramTrainConfig, as_json: bool) -> int:
    result = build_ngram(c)
    if "rank" in result:
        print(f"ngram: part {result['rank']} of {result['world_size']}: {result['tokens']:,} words, "
              f"{result['ngrams']:,} {result['order']}-grams in {result['seconds']:.1f} s -> {result['out']} (merge "
              "with: lmforge ngram train --merge PARTS... --out RUN)", file=sys.stderr)
        return 0
    grams = ", ".join(f"{n}-grams {count:,}" for n, count in enumerate(result["ngrams"], start=1))
    print(f"ngram: {result['tokens']:,} words in {result['sentences']:,} sentences -> {grams} "
          f"({result['smoothing']}) in {result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB -> "
          f"{result['out']}", file=sys.stderr)
    if "val" in result:
        val = result["val"]
        print(f"val: perplexity {val['perplexity']:.2f} ({val['perplexity_excluding_oov']:.2f} without OOV, "
              f"{100 * val['oov_rate']:.2f}% OOV), {val['bits_per_byte']:.4f} bits/byte", file=sys.stderr)
    if as_json:
        print(json.dumps(result))
    return 0


def _export(args: ExportConfig, as_json: bool) -> int:
    run = load_ngram_run(args.run)
    write_arpa(run.model.tables, args.arpa)
    print(f"ngram: wrote {args.arpa} ({', '.join(map(str, run.model.tables.counts()))} n-grams)", file=sys.stderr)
    return 0


def _import(args: ImportConfig, as_json: bool) -> int:
    check_out(args.out, args.overwrite)
    tables = read_arpa(args.arpa)
    save_ngram_run(args.out, tables, args.splitter(), source_path(args.arpa), {"smoothing": "imported"},
                   {"imported_from": str(args.arpa)})
    print(f"ngram: imported {args.arpa}: order {tables.order}, {tables.vocab_size:,} words, "
          f"{', '.join(map(str, tables.counts()))} n-grams -> {args.out}", file=sys.stderr)
    return 0


def _score(args: ScoreConfig, as_json: bool) -> int:
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
    if as_json:
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


HANDLERS = {"train": _train, "export": _export, "import": _import, "score": _score}


def run(args: argparse.Namespace) -> int:
    return HANDLERS[args.action](config_from_args(ACTIONS[args.action][0], args), getattr(args, "json", False))
