"""`lmforge generate`: text from any decoder run (gpt, lstm, gru, rnn) or n-gram run: sampled or greedy,
KV-cached, streamed to stdout; prompts of a file decoded together in batches; beam search; speculative
decoding. Every option is a field of `GenerateConfig` or `SamplingConfig`.

Examples (CPU, seconds):
    lmforge generate --run runs/tiny --prompt "It was" --max-new-tokens 200 --temperature 0.8 --top-p 0.95 --seed 1
    lmforge generate --run runs/tiny --prompts-file prompts.txt --batch-size 8 --max-new-tokens 128
    lmforge generate --run runs/tiny --prompt "It was" --beam 4 --n-best 4 --json
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.config import add_config_args, config_from_args
from lmforge.inference.generation import GenerateConfig, generate_from_run
from lmforge.inference.sampling import SamplingConfig


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, GenerateConfig, switches=True)
    add_config_args(parser, SamplingConfig, switches=True)
    parser.add_argument("--json", action="store_true", help="print results as one JSON object, no streaming")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _print(report) -> None:
    """Generations that were not streamed: each prompt as read, then its text (beams: one line each, scored)."""
    for generation, echo in zip(report.generations, report.echoes):
        beams = generation.get("beams")
        if beams is None or len(beams) == 1:
            print(echo + generation["text"])
            continue
        for rank, beam in enumerate(beams, start=1):
            print(f"[{rank}] score {beam['score']:.4f}: {echo}{beam['text']}")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(GenerateConfig, args)
    sampling = config_from_args(SamplingConfig, args)
    streaming = not args.json and config.batch_size == 1 and config.beam is None
    report = generate_from_run(config, sampling, _write if streaming else None)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    elif not streaming:
        _print(report)
    return 0
