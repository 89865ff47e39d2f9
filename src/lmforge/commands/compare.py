"""`lmforge compare`: runs side by side — family, parameters, tokens/s, training time, validation
loss and bits per byte on the same validation text — as a table (or `--json`) and a PNG of the loss
curves against training time and against tokens seen.

Translation runs compare by BLEU and chrF of the same validation pairs against training time.

Example (CPU, seconds):
    lmforge compare runs/gpt runs/lstm runs/gru runs/rnn --out compare.png
    lmforge compare runs/gru-att runs/tfm
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.applications.compare import compare_runs, plot
from lmforge.runs import open_run


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("runs", type=Path, nargs="+", help="run directories")
    parser.add_argument("--out", type=Path, default=Path("compare.png"), help="PNG of the loss curves")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--max-pairs", type=int, default=500, help="translation runs: valid pairs translated")


def _table(rows: list[dict]) -> str:
    header = f"{'run':<24} {'family':<6} {'params':>9} {'steps':>7} {'tokens/s':>10} {'time s':>7} " \
             f"{'val loss':>9} {'bits/byte':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        bpb = f"{r['bits_per_byte']:.4f}" if r["bits_per_byte"] is not None else "n/a"
        bpb += "*" if r.get("oov_tokens") else ""
        lines.append(f"{Path(r['run']).name[:24]:<24} {r['family']:<6} {r['params'] / 1e6:>8.2f}M {r['steps']:>7} "
                     f"{r['tokens_per_s']:>10,.0f} {r['train_time']:>7.0f} {r['val_loss']:>9.4f} {bpb:>9}")
    lines.append("val loss and bits/byte: the whole val split, as `lmforge eval` reads it (the curves' dots are the "
                 "sample read during training)")
    # a word model prices an out-of-vocabulary word as <unk>, not its bytes: not a code length, no winner
    best = [r for r in rows if r["bits_per_byte"] is not None and not r.get("oov_tokens")]
    if any(r.get("oov_tokens") for r in rows):
        lines.append("* has out-of-vocabulary words or characters scored as <unk>: its bits/byte are a bound below "
                     "the true cost; a byte-level tokenizer (lmforge tokenizer train --kind byte or bpe) has none, "
                     "for n-gram and neural runs alike")
    if len(best) > 1:
        best.sort(key=lambda r: r["bits_per_byte"])
        lines.append(f"best: {Path(best[0]['run']).name} at {best[0]['bits_per_byte']:.4f} bits/byte, "
                     f"{100 * (1 - best[0]['bits_per_byte'] / best[1]['bits_per_byte']):.1f}% below "
                     f"{Path(best[1]['run']).name}")
    return "\n".join(lines)


def _compare_translation(args: argparse.Namespace) -> int:
    from lmforge.applications import compare_translation

    rows = compare_translation.compare_translation_runs(args.runs, args.device, args.max_pairs)
    compare_translation.plot(rows, args.out)
    print(compare_translation.table(rows) + f"\nplot: {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"runs": [{k: v for k, v in r.items() if k != "curve"} for r in rows], "plot": str(args.out)}))
    return 0


def run(args: argparse.Namespace) -> int:
    if open_run(args.runs[0]).contract.kind == "seq2seq":
        return _compare_translation(args)
    rows = compare_runs(args.runs, args.device)
    plot(rows, args.out)
    print(_table(rows) + f"\nplot: {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"runs": [{k: v for k, v in r.items() if k != "curve"} for r in rows],
                          "plot": str(args.out)}))
    return 0
