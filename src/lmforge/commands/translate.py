"""`lmforge translate`: sentences through a translation run (a transformer, seq2seq-gru or seq2seq-lstm run):
beam search by default (--beam 1: greedy; --sample for back-translation), n-best lists with scores, a file
of sentences in batches, attention heat maps and word alignments.

Examples (CPU, seconds):
    lmforge translate --run runs/tfm "Remove the file" --beam 5 --n-best 3
    lmforge translate --run runs/tfm --input messages.txt > messages.de.txt
    lmforge translate --run runs/gru-att "Could not open %s" --attention-map att.png --align
A source longer than the model's max_seq_len is cut to it, with a warning.
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.applications.translation import TranslateConfig, translate_texts
from lmforge.config import add_config_args, config_from_args
from lmforge.inference.translation import DecodeConfig


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, TranslateConfig, switches=True)
    add_config_args(parser, DecodeConfig, switches=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _print(results: list[dict], n_best: int) -> None:
    for result in results:
        if n_best > 1 and result["hypotheses"]:
            for rank, h in enumerate(result["hypotheses"], start=1):
                print(f"[{rank}] {h['score']:.4f}\t{h['text']}")
        else:
            print(result["text"])
        if "alignment" in result:
            print(f"alignment: {result['alignment']}", file=sys.stderr)
        if "attention_map" in result:
            print(f"attention map: {result['attention_map']}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(TranslateConfig, args)
    decode = config_from_args(DecodeConfig, args)
    results = translate_texts(config, decode)
    if args.json:
        print(json.dumps({"translations": results}, ensure_ascii=False))
    else:
        _print(results, decode.n_best)
    return 0
