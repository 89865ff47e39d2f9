"""`lmforge prepare`: raw sources -> clean, filtered, deduplicated train/val documents (optionally tokens).

Sources: .txt/.md, .jsonl(.gz), .parquet, .arrow (Hugging Face layout folders), Wikipedia XML dumps
(.xml/.xml.bz2), Common Crawl WARC/WET (.warc.gz/.wet.gz), hf:DATASET[:CONFIG] (online).
Examples (CPU, seconds to minutes):
    lmforge prepare corpus/ --out data/mycorpus --tokenizer bpe --vocab-size 4096
    lmforge prepare enwiki-latest-pages-articles.xml.bz2 --out data/wiki --workers 2
    lmforge prepare CC-MAIN-*.warc.gz --out data/cc-shard-0 --lang en --rank 0 --world-size 2
    lmforge prepare --merge data/cc-shard-* --out data/cc
    lmforge prepare pairs.jsonl --pairs --src-field en --tgt-field de --out data/en-de     # sentence pairs
    lmforge prepare en.txt de.txt --pairs --out data/en-de                                # two aligned files
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.config import add_config_args, build_config, values_from_args
from lmforge.data.pairs import PairsConfig, prepare_pairs
from lmforge.data.prepare import PrepareConfig, merge_prepared, prepare_corpus
from lmforge.data.quality import QualityConfig
from lmforge.tokenization.training import KINDS


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("sources", nargs="+", help="files, folders or hf:DATASET (with --merge: shard outputs)")
    parser.add_argument("--merge", action="store_true", help="merge the outputs of --rank shards into --out")
    parser.add_argument("--pairs", action="store_true", help="sentence pairs for translation: JSONL/TSV/Parquet "
                        "records, a folder of train/valid/test files, or two aligned text files")
    parser.add_argument("--out", type=Path, required=True, help="output dataset directory")
    parser.add_argument("--val-source", type=Path, action="append", default=[],
                        help="explicit validation files/folders (then all of `sources` is train)")
    parser.add_argument("--test-source", type=Path, action="append", default=[],
                        help="explicit test files/folders: a test split for `eval --split test`")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier prepare output in --out")
    parser.add_argument("--tokenizer", choices=KINDS, help="also train a tokenizer of this kind and tokenize")
    parser.add_argument("--vocab-size", type=int, default=8192, help="with --tokenizer: vocabulary size")
    parser.add_argument("--json", action="store_true", help="print the stats as one JSON object on stdout")
    add_config_args(parser, PrepareConfig)
    add_config_args(parser, QualityConfig, prefix="quality.")
    # --val-fraction, --max-chars and --dedup are shared with PrepareConfig; --pairs reads them with its defaults
    add_config_args(parser, PairsConfig, skip=("val_fraction", "max_chars", "dedup"))


def run_pairs(args: argparse.Namespace) -> int:
    config = build_config(PairsConfig, values_from_args(args, PairsConfig), source="command line")
    stats = prepare_pairs([Path(s) for s in args.sources], args.out, config, args.overwrite)
    out = stats["pairs_out"]
    lines = [f"prepare: {stats['pairs_in']:,} pairs in -> train {out['train']:,}, valid {out['valid']:,}, "
             f"test {out['test']:,} in {stats['seconds']:.1f}s -> {args.out}"]
    for reason, count in sorted({**stats["skipped"], **stats["rejected"]}.items(), key=lambda kv: -kv[1]):
        kept = "" if reason in stats["skipped"] else f" (kept in {args.out}/rejected/{reason}.jsonl.gz)"
        lines.append(f"  dropped {reason:<22} {count:>9,}{kept}")
    print("\n".join(lines), file=sys.stderr)
    if args.tokenizer:
        from lmforge.tokenization.corpus import train_pair_tokenizer
        from lmforge.tokenization.pairs import tokenize_pairs
        from lmforge.tokenization.tokenizer import Tokenizer

        folder = args.out / "tokenizers" / f"{args.tokenizer}{args.vocab_size}"
        train_pair_tokenizer(args.out, "joint", args.tokenizer, args.vocab_size, folder, overwrite=True)
        stats["pair_shards"] = str(tokenize_pairs(args.out, Tokenizer(folder), overwrite=True))
    if args.json:
        print(json.dumps(stats))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.pairs:
        return run_pairs(args)
    quality = build_config(QualityConfig, values_from_args(args, QualityConfig, prefix="quality."),
                           source="command line")
    config = build_config(PrepareConfig, values_from_args(args, PrepareConfig), {"quality": quality},
                          source="command line")
    if args.merge:
        stats = merge_prepared([Path(s) for s in args.sources], args.out, config, args.overwrite)
    else:
        stats = prepare_corpus(args.sources, args.out, config, args.val_source, args.overwrite, args.test_source)
    summary = {"out": str(args.out), **{k: stats[k] for k in ("docs_in", "bytes_in", "docs_out", "bytes_out",
                                                             "rejected_docs", "bad_records", "dedup",
                                                             "languages", "seconds", "mb_per_s")}}
    print_summary(stats, args.out)
    if args.tokenizer:
        from lmforge.tokenization.corpus import tokenize_dataset, train_tokenizer_on

        name = f"{args.tokenizer}{args.vocab_size}" if args.tokenizer != "byte" else "byte"
        tokenizer_dir = args.out / "tokenizers" / name
        # the clean text was just (re)written: a tokenizer or shards left from before are stale
        train_tokenizer_on(args.out, args.tokenizer, args.vocab_size, tokenizer_dir, overwrite=True)
        summary["tokens"] = tokenize_dataset(args.out, tokenizer_dir, None, overwrite=True)
    if args.json:
        print(json.dumps(summary))
    return 0


def print_summary(stats: dict, out: Path) -> None:
    kept = sum(stats["docs_out"].values())
    lines = [f"prepare: {stats['docs_in']:,} docs ({stats['bytes_in'] / 1e6:.1f} MB) in -> {kept:,} out "
             f"{stats['docs_out']} in {stats['seconds']:.1f}s ({stats['mb_per_s']:.2f} MB/s) -> {out}"]
    for reason, count in sorted(stats["rejected_docs"].items(), key=lambda kv: -kv[1]):
        size = stats["rejected_bytes"].get(reason, 0) / 1e6
        lines.append(f"  rejected {reason:<32} {count:>9,} docs {size:>9.2f} MB")
    for name in ("bad_records", "skipped_files", "pii_masked"):
        if stats.get(name):
            lines.append(f"  {name.replace('_', ' ')}: {stats[name]}")
    if stats["dedup"]["near_clusters"]:
        lines.append(f"  near-duplicate clusters: {stats['dedup']['near_clusters']:,}")
    if stats.get("languages"):
        kept = stats.get("languages_kept", {})
        top = ", ".join(f"{k} {v:,}" + (f" ({100 * kept.get(k, 0) / v:.0f}% kept)" if kept else "")
                        for k, v in list(stats["languages"].items())[:6])
        lines.append(f"  languages (documents that reached language id): {top}")
    print("\n".join(lines), file=sys.stderr)
