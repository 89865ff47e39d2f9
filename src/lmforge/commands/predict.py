"""`lmforge predict`: a fine-tuned task run (or baseline) applied to new text. Every option is a field of
`PredictConfig`.

Examples:
    lmforge predict --run runs/sent-bert "The food was great"          # label + probabilities
    lmforge predict --run runs/sent-bert --input reviews.jsonl --json  # every line's text field
    lmforge predict --run runs/pos-bert "The dog barks ."              # tags of the words
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.config import add_config_args, config_from_args
from lmforge.inference.tasks import PredictConfig, predict_run
from lmforge.runs import open_run
from lmforge.tasks.table import TASKS


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, PredictConfig, switches=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(PredictConfig, args)
    result = predict_run(config)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    task = TASKS[open_run(config.run).contract.task]
    for prediction in result["predictions"]:
        print(task.prediction_line(prediction))
    print(f"predict: {len(result['predictions'])} in {1000 * result['seconds']:.1f} ms", file=sys.stderr)
    return 0
