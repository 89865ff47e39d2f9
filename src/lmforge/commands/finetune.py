"""`lmforge finetune`: turn a trained run (or a fresh backbone, or a classical baseline) into a task
model: text classification (single- and multi-label, sentence pairs) or token classification (POS
tags, named entities), with the best weights kept by the validation metric and a full report.

Examples (CPU, minutes):
    lmforge finetune --task classify --init runs/bert --data ../shared/data/sentiment_uci_en --out runs/sent-bert
    lmforge finetune --task classify --model tfidf-logreg --data ../shared/data/sentiment_uci_en --out runs/sent-tfidf
    lmforge finetune --task pair --init runs/bert --data pairs/ --text-field premise --text2-field hypothesis --out r
    lmforge finetune --task tag --init runs/bert --data ../shared/data/brown_pos_en --out runs/pos-bert
    lmforge finetune --task tag --model most-frequent-tag --data ../shared/data/brown_pos_en --out runs/pos-mft
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.applications.tasks import FinetuneOptions, finetune
from lmforge.errors import InputError
from lmforge.models.heads import POOLINGS
from lmforge.tasks.reading import TaskFields

TASKS = ("classify", "pair", "tag", "segment", "qa")


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--task", required=True, choices=TASKS,
                        help="classify (texts), pair (two texts: --text2-field), tag (CoNLL token<TAB>tag files), "
                             "segment (Chinese word segmentation from CoNLL word<TAB>POS files), qa (extractive, "
                             "SQuAD layout: question, context, answer, answer_start)")
    parser.add_argument("--data", required=True, help="file or folder (train/valid/test files split by name), "
                                                      "or hf:NAME[:CONFIG]")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--text2-field", default=None, help="the second text of a pair")
    parser.add_argument("--label-field", default="label", help="label (a list makes the task multi-label)")
    parser.add_argument("--joint-pos", action="store_true", help="segment: also tag each word's POS (BMES-POS)")
    parser.add_argument("--qa-stride", type=int, default=64, help="qa: tokens between a long context's windows")
    parser.add_argument("--chunks", type=int, default=1,
                        help="classify: read up to this many windows of --max-len tokens of a long text (evenly "
                             "spread); each is trained with the text's label, a prediction averages their logits "
                             "(default 1: a long text is cut)")
    parser.add_argument("--valid-fraction", type=float, default=0.1,
                        help="without named files: the hash-split share of valid examples")
    parser.add_argument("--init", type=Path, help="trained run whose backbone and tokenizer to fine-tune")
    parser.add_argument("--model", help="instead of --init: a family from scratch (gpt, bert, lstm, gru, rnn with "
                                        "--tokenizer; bilstm, bigru, fasttext on a word tokenizer of the training "
                                        "texts unless --tokenizer) or a baseline: tfidf-logreg, tfidf-svm, "
                                        "most-frequent-tag, jieba, overlap")
    parser.add_argument("--preset", default="tiny", help="size of a backbone from scratch")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer of a backbone from scratch")
    parser.add_argument("--init-embeddings", type=Path,
                        help="with --model: word vectors (embed run, word2vec/GloVe file) for the token embedding")
    parser.add_argument("--freeze-embeddings", action="store_true", help="keep those embeddings fixed")
    parser.add_argument("--model-args", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="with --model: model config fields over the preset, e.g. d_embed=100 tie_embeddings=false")
    parser.add_argument("--max-len", type=int, default=None,
                        help="tokens per example, longer ones are cut (default 128; fasttext 1024)")
    parser.add_argument("--epochs", type=float, default=None,
                        help="passes over the training set (default 3; fasttext 10, bilstm/bigru 6)")
    parser.add_argument("--max-time", type=float, default=None, help="seconds of training instead of --epochs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (AdamW, 10%% warm-up, cosine; default 5e-4; fasttext 1e-2, "
                             "bilstm/bigru 2e-3)")
    parser.add_argument("--pooling", choices=POOLINGS,
                        help="classify: default cls for encoders, max for bilstm/bigru, mean for fasttext, last "
                             "otherwise")
    parser.add_argument("--dropout", type=float, default=None,
                        help="before the head (default 0.1; fasttext 0, bilstm/bigru 0.3)")
    parser.add_argument("--class-weights", choices=("none", "balanced"), default="none",
                        help="balanced: weight the loss by inverse class frequency (unbalanced labels)")
    parser.add_argument("--patience", type=int, help="stop after this many evaluations without a better score")
    parser.add_argument("--layer-decay", type=float,
                        help="layer-wise LR decay, e.g. 0.8: each Transformer block learns at 0.8x the one above")
    parser.add_argument("--freeze-backbone", action="store_true", help="train the head only (a linear probe)")
    parser.add_argument("--augment", choices=("eda", "char-noise"),
                        help="augment the training examples: EDA (synonyms from --augment-vectors, insertion, swap, "
                             "deletion) or character noise")
    parser.add_argument("--augment-factor", type=float, default=2.0, help="training set size multiplier (2: doubled)")
    parser.add_argument("--augment-vectors", type=Path, help="word vectors (embed run or file) for EDA synonyms")
    parser.add_argument("--train-fraction", type=float, default=1.0,
                        help="train on this deterministic share of the training examples (e.g. 0.1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", action="store_true")


def options_from(args) -> FinetuneOptions:
    if (args.init is None) == (args.model is None):
        raise InputError("give --init RUN (fine-tune a trained backbone) or --model NAME (from scratch or a "
                         "baseline), one of them.")
    if args.task == "pair" and not args.text2_field:
        raise InputError("--task pair needs --text2-field (the second text of each pair).")
    for name in ("max_len", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be positive.")
    if args.layer_decay is not None and not 0 < args.layer_decay <= 1:
        raise InputError(f"--layer-decay {args.layer_decay}: must be in (0, 1].")
    if (args.epochs is not None and args.epochs <= 0) or (args.lr is not None and args.lr <= 0) \
            or not 0 < args.valid_fraction < 1:
        raise InputError("--epochs and --lr must be positive and --valid-fraction in (0, 1).")
    task = "classify" if args.task == "pair" else args.task
    if args.qa_stride <= 0 or args.chunks <= 0:
        raise InputError(f"--qa-stride and --chunks must be positive, got {args.qa_stride} and {args.chunks}.")
    if args.chunks > 1 and (task != "classify" or args.text2_field):
        raise InputError("--chunks reads long single texts: it is for --task classify without --text2-field.")
    fields = TaskFields(task, args.text_field, args.text2_field, args.label_field, args.valid_fraction, args.joint_pos,
                        args.qa_stride, args.chunks)
    return FinetuneOptions(
        out=args.out, data=args.data, fields=fields, init=args.init, model=args.model, preset=args.preset,
        tokenizer=args.tokenizer, max_len=args.max_len, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        pooling=args.pooling, dropout=args.dropout, class_weights=args.class_weights, patience=args.patience,
        freeze_backbone=args.freeze_backbone, max_time=args.max_time, seed=args.seed, threads=args.threads,
        device=args.device, overwrite=args.overwrite, augment=args.augment, augment_factor=args.augment_factor,
        augment_vectors=args.augment_vectors, train_fraction=args.train_fraction,
        init_embeddings=args.init_embeddings, freeze_embeddings=args.freeze_embeddings,
        model_args=_model_args(args.model_args), layer_decay=args.layer_decay)


def _model_args(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"--model-args {pair!r}: write FIELD=VALUE (e.g. d_embed=100).")
        lowered = value.lower()
        out[name.replace("-", "_")] = {"true": True, "false": False}.get(lowered, _number(value))
    return out


def _number(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def summary_lines(result: dict) -> list[str]:
    lines = [f"finetune: {result['family']} {result['task']} on {result['examples'].get('train', 0):,} examples in "
             f"{result['train_seconds']:.1f} s -> {result['out']}"]
    for split in ("valid", "test"):
        report = result.get(split)
        if not report:
            continue
        if "exact_match" in report and "f1" in report:
            lines.append(f"  {split}: exact match {100 * report['exact_match']:.2f}%, F1 {100 * report['f1']:.2f}% "
                         f"over {report['examples']:,} questions")
        elif "segmentation" in report:
            seg = report["segmentation"]
            lines.append(f"  {split}: word P/R/F1 {seg['precision']:.4f}/{seg['recall']:.4f}/{seg['f1']:.4f} over "
                         f"{seg['words']:,} words, character tags {100 * report['char_tag_accuracy']:.2f}%")
        elif "token_accuracy" in report:
            lines.append(f"  {split}: token accuracy {100 * report['token_accuracy']:.2f}% over {report['words']:,} "
                         "words" + (f", entity F1 {report['entity']['f1']:.4f}" if "entity" in report else ""))
        elif "accuracy" in report:
            auc = f", ROC-AUC {report['roc_auc']:.4f}" if report.get("roc_auc") is not None else ""
            lines.append(f"  {split}: accuracy {100 * report['accuracy']:.2f}%, macro-F1 {report['macro_f1']:.4f}"
                         f"{auc} over {report['examples']:,} examples")
        else:
            lines.append(f"  {split}: micro-F1 {report['micro_f1']:.4f}")
    for split, note in result.get("notes", {}).items():
        if note.get("unseen_labels"):
            unseen = ", ".join(note["unseen_labels"][:10])
            lines.append(f"  {split}: labels never seen in training (counted wrong): {unseen}")
    return lines


def run(args: argparse.Namespace) -> int:
    result = finetune(options_from(args))
    print("\n".join(summary_lines(result)), file=sys.stderr)
    if args.json:
        print(json.dumps(result, default=str))
    return 0
