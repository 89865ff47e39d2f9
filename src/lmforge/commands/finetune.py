"""`lmforge finetune`: turn a trained run (or a fresh backbone, or a classical baseline) into a task
model: text classification (single- and multi-label, sentence pairs), token classification (POS tags,
named entities), Chinese word segmentation or extractive QA, with the best weights kept by the
validation metric and a full report. Every option is a field of `FinetuneConfig`.

Examples (CPU, minutes):
    lmforge finetune --task classify --init runs/bert --data ../shared/data/sentiment_uci_en --out runs/sent-bert
    lmforge finetune --task classify --model tfidf-logreg --data ../shared/data/sentiment_uci_en --out runs/sent-tfidf
    lmforge finetune --task pair --init runs/bert --data pairs/ --text-field premise --text2-field hypothesis --out r
    lmforge finetune --task tag --init runs/bert --data ../shared/data/brown_pos_en --out runs/pos-bert
    lmforge finetune --task tag --model most-frequent-tag --data ../shared/data/brown_pos_en --out runs/pos-mft
    lmforge finetune --task chat --init runs/gpt --data ../shared/data/chatterbot_dialog --out runs/chat
    lmforge finetune --resume runs/sent-bert     # an interrupted (Ctrl-C) run, from its last checkpoint
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.applications.finetune import FinetuneConfig, finetune, resume_finetune
from lmforge.config import add_config_args, config_from_args
from lmforge.tasks.table import TASKS


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    if "--resume" in argv:   # everything else comes from the run
        parser.add_argument("--resume", type=Path, metavar="RUN", required=True,
                            help="continue the interrupted fine-tuning run in RUN from its last checkpoint")
        parser.add_argument("--threads", type=int, help="torch CPU threads")
    else:
        add_config_args(parser, FinetuneConfig, switches=True)
        parser.add_argument("--resume", type=Path, metavar="RUN",
                            help="continue the interrupted fine-tuning run in RUN (alone: its settings are recorded)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")


def summary_lines(result: dict) -> list[str]:
    if result["task"] == "chat":
        from lmforge.applications.chat import summary_lines as chat_lines

        return chat_lines(result)
    task = TASKS[result["task"]]
    lines = [f"finetune: {result['family']} {result['task']} on {result['examples'].get('train', 0):,} examples in "
             f"{result['train_seconds']:.1f} s -> {result['out']}"]
    lines += [task.summary_line(split, result[split]) for split in ("valid", "test") if result.get(split)]
    for split, note in result.get("notes", {}).items():
        if note.get("unseen_labels"):
            unseen = ", ".join(note["unseen_labels"][:10])
            lines.append(f"  {split}: labels never seen in training (counted wrong): {unseen}")
    return lines


def run(args: argparse.Namespace) -> int:
    result = resume_finetune(args.resume, args.threads) if getattr(args, "resume", None) \
        else finetune(config_from_args(FinetuneConfig, args))
    print("\n".join(summary_lines(result)), file=sys.stderr)
    if args.json:
        print(json.dumps(result, default=str))
    return 0
