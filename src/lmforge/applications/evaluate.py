"""A run's metrics on a split, for every kind of run: loss, perplexity and bits-per-byte of a language
model (masked-LM loss, masked-token accuracy and pseudo-perplexity of an encoder) or of an n-gram model,
and the task report of a fine-tuned run or baseline. A notebook calls `evaluate(EvalConfig(run=...))`."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lmforge.data.shards import check_shards_match, read_meta
from lmforge.devices import autocast_dtype, pick_device
from lmforge.errors import InputError
from lmforge.evaluation.masked import pseudo_perplexity
from lmforge.evaluation.perplexity import unigram_bits_per_byte
from lmforge.inference.loading import load_lm
from lmforge.inference.tasks import load_task_run, task_outputs
from lmforge.runs import Run, open_run
from lmforge.training.batches import eval_windows
from lmforge.training.config import TrainConfig
from lmforge.training.recipes import DataContext, recipe_for

UNIGRAM_TOKENS = 50_000_000


@dataclass
class EvalConfig:
    run: Path = field(default=Path("."), metadata={"required": True})
    """run directory"""
    data: Path | None = None
    """token shard directory (None: the run's own); n-gram runs: a prepared dataset or a text file; task runs: a
    file or folder of labelled examples"""
    split: str = "val"
    """split to evaluate (task runs: val means valid)"""
    max_tokens: int | None = None
    """evaluate at most this many tokens"""
    batch_size: int = 8
    """windows per forward pass"""
    stride: int | None = None
    """Transformer decoders: sliding windows every STRIDE tokens, each token scored once with at least
    seq_len - STRIDE tokens of context (None: non-overlapping windows)"""
    pppl_windows: int = 4
    """encoders: windows scored for pseudo-perplexity (one forward pass per token)"""
    device: str = "auto"
    """auto, cpu, cuda, mps"""
    threads: int | None = None
    """torch CPU threads (None: torch's choice)"""
    slice_field: str | None = None
    """task runs: metrics per value of this field, and the gaps"""
    positive: str | None = None
    """task runs, binary labels: the positive label (ROC-AUC, fairness)"""
    text_field: str | None = None
    """task runs, --data: the field of the text (None: the run's)"""
    text2_field: str | None = None
    """task runs, --data: the field of a pair's second text (None: the run's)"""
    label_field: str | None = None
    """task runs, --data: the field of the label (None: the run's)"""
    skip_bad_records: bool = False
    """task runs: skip records without the text or label field (counted and reported)"""
    beam: int = 5
    """translation runs: beams of the search (1: greedy)"""
    length_penalty: float = 1.0
    """translation runs: beam hypotheses are ranked by log-probability / length ** length_penalty"""
    early_stopping: bool = False
    """translation runs: a sentence's beam search ends once it holds --beam finished hypotheses"""
    max_pairs: int | None = None
    """translation runs: translate at most this many pairs of the split"""
    harness: Path | None = None
    """decoder and n-gram runs: an lm-evaluation-harness task YAML (its data in local files) to run instead"""
    limit: int | None = None
    """--harness: at most this many examples per task"""
    num_fewshot: int | None = None
    """--harness: few-shot examples per prompt (None: the task's own setting)"""

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"--batch-size must be positive, got {self.batch_size}.")
        if self.threads is not None and self.threads <= 0:
            raise ValueError(f"--threads must be positive, got {self.threads}.")


def evaluate(c: EvalConfig) -> dict:
    """The metrics of the run in `c.run`, by its kind."""
    if c.threads is not None:
        torch.set_num_threads(c.threads)
    run = open_run(c.run).require("eval", "lm", "ngram", "task", "baseline", "seq2seq")
    if c.harness is not None:
        from lmforge.interop.harness import run_harness

        return run_harness(run.path, c.harness, c.limit, c.num_fewshot, c.device if c.device != "auto" else "cpu")
    if run.contract.kind == "seq2seq":
        from lmforge.applications.translation import evaluate_translation
        from lmforge.inference.translation import DecodeConfig

        decode = DecodeConfig(beam=c.beam, length_penalty=c.length_penalty, early_stopping=c.early_stopping)
        return evaluate_translation(run, c.data, "valid" if c.split == "val" else c.split, decode, c.max_pairs,
                                    c.device)
    if run.contract.kind in ("task", "baseline"):
        return evaluate_task_run(run, str(c.data) if c.data else None, "valid" if c.split == "val" else c.split,
                                 c.slice_field, c.positive, fields={"text_field": c.text_field,
                                                                    "text2_field": c.text2_field,
                                                                    "label_field": c.label_field,
                                                                    "skip_bad_records": c.skip_bad_records or None})
    if run.contract.kind == "ngram":
        return _evaluate_ngram(run, c.data, c.split)
    if run.contract.objective == "chat":   # reply perplexity on held-out conversations
        from lmforge.applications.chat import evaluate_chat

        return evaluate_chat(run, str(c.data) if c.data else None, "valid" if c.split == "val" else c.split,
                             c.device)
    return evaluate_lm(run, c)


def evaluate_lm(run: Run, c: EvalConfig) -> dict:
    device = pick_device(c.device)
    loaded = load_lm(run, device)
    model, tokenizer = loaded.model, loaded.tokenizer
    if not (c.data or run.contract.shards):
        raise InputError(f"{run.path}: an imported run has no token shards of its own; pass --data SHARDS "
                         f"(`lmforge tokenize DATA --tokenizer {run.path}` makes them).")
    meta = read_meta(Path(c.data or run.contract.shards))
    check_shards_match(meta, vocab_size=model.config.vocab_size, tokenizer_sha256=tokenizer.sha256,
                       owner=f"run {run.path}")
    tokens = meta.tokens(c.split)
    seq_len = run.section("train", TrainConfig).seq_len or getattr(model.config, "max_seq_len", 0)
    recipe = recipe_for(run.family, run.contract.objective)
    masked = recipe.objective == "masked_lm"
    window = recipe.window(seq_len)   # an encoder window is [CLS] + seq_len - 1 tokens
    if c.stride is not None and recipe.objective != "causal_lm":
        raise InputError(f"--stride: sliding windows are for Transformer decoders; a {run.family} run "
                         "already reads the split as a stream (recurrent) or needs none (encoder).")
    if c.stride is not None and not 0 < c.stride <= seq_len:
        raise InputError(f"--stride {c.stride}: must be in 1..{seq_len} (the run's window).")
    max_windows = None if c.max_tokens is None else max(1, c.max_tokens // (c.stride or window))
    starts = eval_windows(tokens, window, max_windows, c.stride)
    if len(starts) == 0:
        raise InputError(f"{meta.directory}/{c.split}.bin: {len(tokens)} tokens, fewer than one window of "
                         f"{window + 1}; evaluate a larger split.")
    options = run.section(recipe.objective, recipe.options) if recipe.options else None
    ctx = DataContext(seq_len, c.batch_size, 1, 0, tokenizer, **({"masked_lm": options} if options else {}),
                      stride=c.stride)
    token_bytes = None if masked else token_byte_table(tokenizer, tokens, meta.splits[c.split].get("bytes", 0))
    with tqdm(total=len(starts), desc=f"eval {c.split}", unit="window", file=sys.stderr, dynamic_ncols=True,
              mininterval=1.0) as bar:
        sums = recipe.evaluate(model, tokens, starts, ctx, device, autocast_dtype(device), token_bytes,
                               meta.bytes_per_token(c.split), bar.update)
    result = {**sums.report(), "family": run.family, "objective": recipe.objective, "split": c.split,
              "shards": str(meta.directory), "run": str(run.path)}
    if tokenizer.unk_id is not None:   # <|unk|> targets price a rare character or word as one token, as an
        # n-gram model's OOVs are: compare marks both alike
        targets = np.concatenate([tokens[s + 1:s + 1 + window] for s in starts]) if len(starts) else tokens[:0]
        result["oov_tokens"] = int((np.asarray(targets) == tokenizer.unk_id).sum())
    if masked and c.pppl_windows > 0:
        result.update(_pseudo_perplexity(model, tokens, starts[:c.pppl_windows], window, tokenizer, device))
    has_train = bool(meta.splits.get("train", {}).get("tokens"))
    if not masked and not c.stride and result["bits_per_byte"] is not None and has_train:
        result["unigram_bits_per_byte"] = _unigram_baseline(meta, tokens, starts, window, model.config.vocab_size,
                                                            result["bytes"])
    return result


def _unigram_baseline(meta, tokens, starts, window: int, vocab_size: int, val_bytes) -> float:
    """The baseline to beat, on the same target tokens and bytes: frequencies from the first UNIGRAM_TOKENS
    of the train split (exact for small corpora; a billion-token split is not read in full just for it)."""
    targets = np.concatenate([tokens[s + 1:s + 1 + window] for s in starts]).astype(np.int64)
    train_prefix = np.asarray(meta.tokens("train")[:UNIGRAM_TOKENS])
    return unigram_bits_per_byte(train_prefix, targets, vocab_size, val_bytes)["bits_per_byte"]


def _evaluate_ngram(run: Run, data: Path | None, split: str) -> dict:
    """An n-gram run reads text, not shards: `data` is a prepared dataset or a text file (default: its corpus)."""
    from lmforge.ngram.evaluate import evaluate_ngram
    from lmforge.ngram.store import load_ngram_run

    loaded = load_ngram_run(run.path)
    source = Path(data or run.contract.corpus or "")
    if not source.is_dir() and not source.is_file():
        raise InputError(f"{run.path}: the n-gram run's corpus {source} is gone; pass --data DATASET or a text file.")
    with tqdm(desc=f"eval {split}", unit=" words", unit_scale=True, file=sys.stderr, mininterval=1.0) as bar:
        result = evaluate_ngram(loaded, source, split, bar.update)
    return {**result, "run": str(run.path)}


def token_byte_table(tokenizer, tokens, split_bytes: int) -> np.ndarray | None:
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


def evaluate_task_run(run: Path | Run, data: str | None = None, split: str = "valid", slice_field: str | None = None,
                      positive: str | None = None, device: str = "cpu", items: list | None = None,
                      fields: dict | None = None) -> dict:
    """The report of a task run on a split of its data (or of `data`, read with `fields` over the run's
    field names); `items` are that split's examples when the caller has read them already (fine-tuning
    reports on the splits it just read)."""
    task_run = load_task_run(run, device, verb="eval")
    task, source = task_run.task, data or task_run.run.contract.corpus
    if positive is not None and positive not in task_run.labels.names:
        raise InputError(f"--positive {positive}: not a label of {task_run.run.path} (its labels: "
                         f"{', '.join(task_run.labels.names)}).")
    read_with = task_run.fields.overridden(**(fields or {}))
    # a file given with --data is all one split; the run's own data is split as fine-tuning split it
    whole_file = items is None and data is not None and Path(data).is_file()
    if items is None:
        items = task.read_eval(source, read_with, split) if whole_file \
            else getattr(task.read_splits(source, read_with), split)
    if not items:
        raise InputError(f"{source}: no {split} examples to evaluate; pass --data FILE.")
    outputs = task_outputs(task_run, items, device)
    split = Path(source).name if whole_file else split
    extra = {"thresholds": task_run.thresholds} if task_run.multi_label else {}
    report = task.report(items, outputs, task_run.labels, task_run.multi_label, **extra,
                         plot_to=task_run.run.path / f"confusion_{split}.png", slice_field=slice_field,
                         positive=positive)
    return {"split": split, "data": str(source), **report}
