"""`lmforge eval`: a run's validation metrics on any shard directory, for every family: loss, perplexity
and bits-per-byte for language models; masked-LM loss, masked-token accuracy and pseudo-perplexity
for encoders.

Example (CPU, seconds):
    lmforge eval --run runs/tiny --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lmforge.applications.tasks import evaluate_task_run
from lmforge.data.shards import check_shards_match, read_meta
from lmforge.errors import InputError
from lmforge.evaluation.masked import pseudo_perplexity
from lmforge.evaluation.perplexity import unigram_bits_per_byte
from lmforge.inference.loading import load
from lmforge.ngram.evaluate import evaluate_ngram
from lmforge.ngram.store import is_ngram_run, load_ngram_run
from lmforge.runs import read_run_config
from lmforge.training.batches import eval_windows
from lmforge.training.distributed import pick_device
from lmforge.training.recipes import RECIPES, DataContext

UNIGRAM_TOKENS = 50_000_000


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run directory")
    parser.add_argument("--data", type=Path, help="token shard directory (default: the run's own); n-gram runs: a "
                        "prepared dataset or a text file")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--max-tokens", type=int, default=None, help="evaluate at most this many tokens")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--stride", type=int, default=None,
                        help="Transformer decoders: sliding windows every STRIDE tokens, each token scored once with "
                             "at least seq_len - STRIDE tokens of context (default: non-overlapping windows)")
    parser.add_argument("--pppl-windows", type=int, default=4,
                        help="encoders: windows scored for pseudo-perplexity (one forward pass per token)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--slice-field", help="task runs: metrics per value of this field, and the gaps")
    parser.add_argument("--positive", help="task runs, binary labels: the positive label (ROC-AUC, fairness)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def evaluate_run(run: Path, data: Path | None = None, split: str = "val", max_tokens: int | None = None,
                 batch_size: int = 8, device: str = "auto", pppl_windows: int = 4, stride: int | None = None) -> dict:
    if is_task_run(run):
        return evaluate_task_run(run, str(data) if data else None, "valid" if split == "val" else split,
                                 device="cpu")
    if is_ngram_run(run):
        return _evaluate_ngram(run, data, split)
    device = pick_device(device)
    loaded = load(run, device)
    model, tokenizer = loaded.model, loaded.tokenizer
    meta = read_meta(Path(data or loaded.run.shards))
    check_shards_match(meta, vocab_size=model.config.vocab_size, tokenizer_sha256=tokenizer.sha256,
                       owner=f"run {run}")
    tokens = meta.tokens(split)
    train = loaded.config.get("train", {})
    seq_len = int(train.get("seq_len") or getattr(model.config, "max_seq_len", 0))
    recipe = RECIPES[loaded.run.family]
    masked = recipe.objective == "masked_lm"
    window = seq_len - 1 if masked else seq_len   # an encoder window is [CLS] + seq_len - 1 tokens
    if stride is not None and recipe.objective != "causal_lm":
        raise InputError(f"--stride: sliding windows are for Transformer decoders; a {loaded.run.family} run "
                         "already reads the split as a stream (recurrent) or needs none (encoder).")
    if stride is not None and not 0 < stride <= seq_len:
        raise InputError(f"--stride {stride}: must be in 1..{seq_len} (the run's window).")
    max_windows = None if max_tokens is None else max(1, max_tokens // (stride or window))
    starts = eval_windows(tokens, window, max_windows, stride)
    if len(starts) == 0:
        raise InputError(f"{meta.directory}/{split}.bin: {len(tokens)} tokens, fewer than one window of "
                         f"{window + 1}; evaluate a larger split.")
    ctx = DataContext(seq_len, batch_size, 1, 0, tokenizer, float(train.get("mask_rate", 0.15)),
                      bool(train.get("whole_word_mask", False)), stride=stride)
    autocast = torch.bfloat16 if device.type == "cuda" else None
    token_bytes = None if masked else _token_bytes(tokenizer, tokens, meta.splits[split].get("bytes", 0))
    with tqdm(total=len(starts), desc=f"eval {split}", unit="window", file=sys.stderr, dynamic_ncols=True,
              mininterval=1.0) as bar:
        sums = recipe.evaluate(model, tokens, starts, ctx, device, autocast, token_bytes,
                               meta.bytes_per_token(split), bar.update)
    result = {**sums.report(), "family": loaded.run.family, "objective": recipe.objective, "split": split,
              "shards": str(meta.directory), "run": str(run)}
    if masked and pppl_windows > 0:
        result.update(_pseudo_perplexity(model, tokens, starts[:pppl_windows], window, tokenizer, device))
    if not masked and not stride and result["bits_per_byte"] is not None and meta.splits.get("train", {}).get("tokens"):
        # the baseline to beat, on the same target tokens and bytes
        targets = np.concatenate([tokens[s + 1:s + 1 + window] for s in starts]).astype(np.int64)
        # frequencies from the first UNIGRAM_TOKENS of the train split: exact for small corpora, and a
        # billion-token split is not read in full just for the baseline
        train_prefix = np.asarray(meta.tokens("train")[:UNIGRAM_TOKENS])
        result["unigram_bits_per_byte"] = unigram_bits_per_byte(
            train_prefix, targets, model.config.vocab_size, result["bytes"])["bits_per_byte"]
    return result


def is_task_run(run: Path) -> bool:
    return bool(read_run_config(run).get("run", {}).get("task"))


def _evaluate_ngram(run: Path, data: Path | None, split: str) -> dict:
    """An n-gram run reads text, not shards: --data is a prepared dataset or a text file (default: its corpus)."""
    loaded = load_ngram_run(run)
    source = Path(data or loaded.run.corpus or "")
    if not source.is_dir() and not source.is_file():
        raise InputError(f"{run}: the n-gram run's corpus {source} is gone; pass --data DATASET or a text file.")
    with tqdm(desc=f"eval {split}", unit=" words", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
        result = evaluate_ngram(loaded, source, split, bar.update)
    return {**result, "run": str(run)}


def _token_bytes(tokenizer, tokens, split_bytes: int) -> np.ndarray | None:
    """UTF-8 bytes per token id. An <|unk|> stands for characters the vocabulary lacks: it is given the
    bytes of the split's text that the known tokens do not account for, spread over its occurrences,
    so bits per byte count every byte of the original text (as it promises) however many are unknown."""
    table = tokenizer.token_byte_lengths()
    if table is None or tokenizer.unk_id is None:
        return table
    counts = np.bincount(np.asarray(tokens), minlength=len(table))[:len(table)]
    unknown, missing = int(counts[tokenizer.unk_id]), split_bytes - int((counts * table).sum())
    if unknown == 0 or missing <= 0:
        return table
    table = table.astype(np.float64)
    table[tokenizer.unk_id] = missing / unknown
    return table


def _pseudo_perplexity(model, tokens, starts, window: int, tokenizer, device) -> dict:
    """Every ordinary token of the first windows, masked in turn, as the encoder reads them: [CLS] + window."""
    windows = np.stack([tokens[s:s + window].astype(np.int64) for s in starts])
    windows = np.concatenate([np.full((len(windows), 1), tokenizer.cls_id), windows], axis=1)
    scored = ~np.isin(windows, np.array(sorted(tokenizer.special_ids.values())))
    return pseudo_perplexity(model, torch.from_numpy(windows), torch.from_numpy(scored), tokenizer.mask_id, device)


def summary_line(result: dict) -> str:
    if result["objective"] == "masked_lm":
        pppl = (f", pseudo-perplexity {result['pseudo_perplexity']:.2f} over {result['pseudo_scored_tokens']} tokens"
                if "pseudo_perplexity" in result else "")
        return (f"eval {result['split']}: masked-LM loss {result['mlm_loss']:.4f} nats/token, masked-token accuracy "
                f"{100 * result['masked_accuracy']:.1f}% over {result['masked_tokens']:,} masked tokens{pppl}")
    bpb = f"{result['bits_per_byte']:.4f} bits/byte" if result["bits_per_byte"] is not None else "bits/byte n/a"
    baseline = (f" (unigram baseline {result['unigram_bits_per_byte']:.4f})"
                if result.get("unigram_bits_per_byte") is not None else "")
    oov = (f" ({result['perplexity_excluding_oov']:.2f} excluding {result['oov_tokens']:,} OOV)"
           if result.get("oov_tokens") else "")
    return (f"eval {result['split']}: loss {result['val_loss']:.4f} nats/token, perplexity {result['perplexity']:.2f}"
            f"{oov}, {bpb}{baseline} over {result['tokens']:,} tokens")


def task_table(report: dict) -> str:
    """A readable summary of a task report: headline metrics, per class, per slice."""
    if "segmentation" in report:
        seg = report["segmentation"]
        return (f"eval {report['split']}: word precision {seg['precision']:.4f}, recall {seg['recall']:.4f}, F1 "
                f"{seg['f1']:.4f} over {seg['words']:,} words; character tags {100 * report['char_tag_accuracy']:.2f}%")
    if "token_accuracy" in report:
        entity = f", entity F1 {report['entity']['f1']:.4f}" if "entity" in report else ""
        return f"eval {report['split']}: token accuracy {100 * report['token_accuracy']:.2f}% over " \
               f"{report['words']:,} words{entity}"
    if "accuracy" not in report:
        return f"eval: micro-F1 {report['micro_f1']:.4f}, exact match {report['exact_match']:.4f}"
    lines = [f"eval {report['split']}: {report['examples']:,} examples, accuracy {100 * report['accuracy']:.2f}%, "
             f"macro-F1 {report['macro_f1']:.4f}, weighted-F1 {report['weighted_f1']:.4f}"
             + (f", ROC-AUC {report['roc_auc']:.4f}" if report.get("roc_auc") is not None else "")
             + (f", ECE {report['ece']:.4f}" if report.get("ece") is not None else ""),
             f"{'class':<20} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for name, row in report["per_class"].items():
        lines.append(f"{name[:20]:<20} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} "
                     f"{row['support']:>8}")
    if "slices" in report:
        s = report["slices"]
        lines.append(f"slices by accuracy (worst {s['worst_slice']}, gap {s['gap']:.4f}):")
        for name, row in s["slices"].items():
            lines.append(f"  {name[:30]:<30} {row['examples']:>6} examples  accuracy {row['accuracy']:.4f}  "
                         f"macro-F1 {row['macro_f1']:.4f}")
        fair = s.get("fairness")
        if fair and fair["demographic_parity_difference"] is not None:
            eo = fair["equal_opportunity_difference"]
            lines.append(f"  demographic parity difference {fair['demographic_parity_difference']:.4f}, equal "
                         f"opportunity difference {'n/a' if eo is None else f'{eo:.4f}'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise InputError(f"--batch-size must be positive, got {args.batch_size}.")
    if args.threads is not None:
        if args.threads <= 0:
            raise InputError(f"--threads must be positive, got {args.threads}.")
        torch.set_num_threads(args.threads)
    if is_task_run(args.run):
        result = evaluate_task_run(args.run, str(args.data) if args.data else None,
                                   "valid" if args.split == "val" else args.split, args.slice_field, args.positive)
        print(task_table(result), file=sys.stderr)
        if args.json:
            print(json.dumps(result))
        return 0
    result = evaluate_run(args.run, args.data, args.split, args.max_tokens, args.batch_size, args.device,
                          args.pppl_windows, args.stride)
    print(summary_line(result), file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0
