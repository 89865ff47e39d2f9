"""`lmforge predict`: a fine-tuned task run (or baseline) applied to new text.

Examples:
    lmforge predict --run runs/sent-bert "The food was great"          # label + probabilities
    lmforge predict --run runs/sent-bert --input reviews.jsonl --json  # every line's text field
    lmforge predict --run runs/pos-bert "The dog barks ."              # tags of the words
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lmforge.applications.tasks import load_task_run, predict
from lmforge.errors import InputError
from lmforge.tasks.data import Sentence, read_records, to_example
from lmforge.tasks.reading import texts_as_examples


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--run", type=Path, required=True, help="fine-tuned run directory")
    parser.add_argument("texts", nargs="*", help="texts to label (tagging: words separated by spaces)")
    parser.add_argument("--input", type=Path, help="a JSONL/CSV file: its text field (the run's) on every line")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    task_run = load_task_run(args.run, args.device)
    fields = task_run.fields
    if fields.task == "qa":
        if args.input is None:
            raise InputError("predict on a QA run: give --input FILE.jsonl with question and context fields.")
        from lmforge.tasks.qa import read_qa

        predictions = predict(task_run, read_qa(args.input)[0], args.device)
        for p in predictions if not args.json else ():
            print(f"{p['question'][:60]}\t{p['answer'][:200]!r}")
        if args.json:
            print(json.dumps({"predictions": predictions}, ensure_ascii=False))
        return 0
    if args.input is not None:
        items = [to_example(r, w, fields.text_field, None, fields.text2_field) for r, w in read_records(args.input)]
    else:
        if not args.texts:
            raise InputError("predict: give texts to label, or --input FILE.")
        items = texts_as_examples(args.texts)
    empty = [e.source for e in items if not e.text.strip()]
    if empty:
        raise InputError(f"{empty[0]}: an empty text has nothing to predict from; remove it.")
    if fields.task == "tag":
        items = [Sentence(e.text.split(), [], e.source) for e in items]
    elif fields.task == "segment":   # characters, spaces dropped
        items = [Sentence([c for c in e.text if not c.isspace()], [], e.source) for e in items]
    start = time.perf_counter()
    predictions = predict(task_run, items, args.device)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"predictions": predictions, "seconds": seconds}, ensure_ascii=False))
        return 0
    for p in predictions:
        if "pos" in p:
            print(" ".join(w if pos is None else f"{w}/{pos}" for w, pos in zip(p["words"], p["pos"])))
        elif "tags" in p:
            print(" ".join(f"{w}/{t}" for w, t in zip(p["words"], p["tags"])))
        else:
            top = sorted(p["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            print(f"{p['label']}\t" + "  ".join(f"{k} {v:.3f}" for k, v in top) + f"\t{p['text'][:60]}")
    print(f"predict: {len(predictions)} in {1000 * seconds:.1f} ms", file=sys.stderr)
    return 0
