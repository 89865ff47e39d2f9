"""Fine-tuning runs, end to end: read the task's examples, take a backbone (a trained run with --init, or
a fresh one of a family), put a head on it, train it with the one loop, keep the best weights by the
validation metric, and report; and evaluate or apply such a run (or a classical baseline) later.
A notebook calls `finetune(FinetuneOptions(...))`, `evaluate_task_run(...)`, `predict(...)`."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lmforge.applications.qa import qa_encoded, qa_outputs, qa_report
from lmforge.config import build_config, to_toml
from lmforge.errors import InputError
from lmforge.evaluation.task_report import classify_report, plot_confusion, segment_report, tag_report
from lmforge.models import ALL_MODELS
from lmforge.models.task import TaskHeadConfig, TaskModel
from lmforge.runs import (
    RUN_CONFIG,
    RunConfig,
    atomic_write_text,
    load_weights,
    read_run_config,
    run_contract,
    source_path,
)
from lmforge.tasks.baselines import BASELINES, JiebaSegmenter, MostFrequentTag, OverlapQA, TfidfLinear, load_baseline
from lmforge.tasks.encode import Labels, encode_classification, encode_tagging, mean_by_origin
from lmforge.tasks.qa import windows_of
from lmforge.tasks.reading import TaskFields, read_eval_examples, read_task_splits
from lmforge.tasks.segment import from_bmes
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.finetune import TaskTraining, softmax, task_logits
from lmforge.training.loop import TrainConfig, TrainSetup, train


@dataclass
class FinetuneOptions:
    out: Path
    data: str
    fields: TaskFields
    init: Path | None = None          # a trained run whose backbone (and tokenizer) to start from
    model: str | None = None          # a family trained from scratch, or a baseline (tfidf-logreg, ...)
    preset: str = "tiny"
    tokenizer: Path | None = None     # for a backbone from scratch
    max_len: int | None = None        # None: the family's default (128 tokens; a bag of n-grams reads 1024)
    epochs: float | None = None       # None: the family's default (FAMILY_DEFAULTS)
    batch_size: int = 32
    lr: float | None = None
    pooling: str | None = None
    dropout: float | None = None
    class_weights: str = "none"       # none | balanced
    patience: int | None = None
    freeze_backbone: bool = False
    max_time: float | None = None
    seed: int = 1
    threads: int | None = None
    device: str = "auto"
    overwrite: bool = False
    augment: str | None = None        # eda | char-noise (training examples only)
    augment_factor: float = 2.0
    augment_vectors: Path | None = None
    init_embeddings: Path | None = None   # word vectors for the token embedding of a backbone from scratch
    freeze_embeddings: bool = False
    model_args: dict | None = None        # config fields of a backbone from scratch, over its preset
    layer_decay: float | None = None      # layer-wise LR decay (Transformer backbones)
    train_fraction: float = 1.0       # use a deterministic share of the training examples (small-data studies)


DEFAULT_POOLING = {"bert": "cls", "gpt": "last", "lstm": "last", "gru": "last", "rnn": "last", "bilstm": "max",
                   "bigru": "max", "fasttext": "mean"}
# fine-tuning settings per family where the pretrained-Transformer ones do not suit: a body trained from
# scratch needs more epochs at a higher LR (fastText itself trains 5 epochs at SGD LR 0.1)
FAMILY_DEFAULTS = {"fasttext": dict(epochs=10.0, lr=1e-2, dropout=0.0, max_len=1024),   # a long text costs it little
                   "bilstm": dict(epochs=6.0, lr=2e-3, dropout=0.3, max_len=128),
                   "bigru": dict(epochs=6.0, lr=2e-3, dropout=0.3, max_len=128)}
GENERAL_DEFAULTS = dict(epochs=3.0, lr=5e-4, dropout=0.1, max_len=128)
BIDIRECTIONAL = ("bilstm", "bigru")
WORD_VOCABULARY = 50_000   # words kept by the word tokenizer a task body trains when given none


def _label_values(splits, fields: TaskFields) -> list:
    if fields.tagging:
        return [t for s in splits.train for t in s.tags]
    return [e.label for e in splits.train]


def _settings(o: FinetuneOptions, family: str) -> FinetuneOptions:
    """The options with the family's defaults where none was given."""
    defaults = FAMILY_DEFAULTS.get(family, GENERAL_DEFAULTS)
    return replace(o, **{name: value for name, value in defaults.items() if getattr(o, name) is None})


def _word_tokenizer(o: FinetuneOptions, splits) -> Tokenizer:
    """A word tokenizer trained on the training texts, written into the run (a task body's default)."""
    from lmforge.tokenization.training import train_word

    if o.fields.tagging:
        texts = [" ".join(s.words) for s in splits.train]
    elif o.fields.task == "qa":
        texts = [t for e in splits.train for t in (e.question, e.context)]
    else:
        texts = [t for e in splits.train for t in (e.text, e.text2) if t]
    out = Path(o.out)
    out.mkdir(parents=True, exist_ok=True)
    # tags read case (capitals mark proper nouns); a bag of words is better lower-cased
    train_word(texts, WORD_VOCABULARY, lowercase=not o.fields.tagging).save(str(out / "tokenizer.json"))
    return Tokenizer(out / "tokenizer.json")


def _backbone(o: FinetuneOptions, splits):
    """(backbone module, tokenizer, family, model config section, preset)."""
    if o.init is not None:
        from lmforge.inference.loading import load

        loaded = load(o.init, "cpu")   # refuses a fine-tuned run: start from a pretrained one
        return loaded.model.train(), loaded.tokenizer, loaded.run.family, loaded.config["model"], loaded.run.preset
    if o.model not in ALL_MODELS:
        raise InputError(f"--model {o.model}: choose a family ({', '.join(ALL_MODELS)}) or a baseline "
                         f"({', '.join(BASELINES)}), or pass --init RUN.")
    spec = ALL_MODELS[o.model]
    if o.tokenizer is None and spec.kind != "task":
        raise InputError(f"--model {o.model} from scratch needs --tokenizer DIR (e.g. the tokenizer of the run you "
                         "compare it with); or start from a trained run with --init RUN.")
    tokenizer = Tokenizer(o.tokenizer) if o.tokenizer is not None else _word_tokenizer(o, splits)
    if o.preset not in spec.presets:
        raise InputError(f"--preset {o.preset}: {o.model} presets are {', '.join(spec.presets)}.")
    config = build_config(spec.config_cls, spec.presets[o.preset], o.model_args or {},
                          {"vocab_size": tokenizer.vocab_size}, spec.fixed, source="--model-args")
    torch.manual_seed(o.seed)
    model = spec.module_cls(config)
    specials = set(tokenizer.special_ids.values())
    strings = ["" if i in specials else tokenizer.hf.id_to_token(i) or "" for i in range(tokenizer.vocab_size)]
    if hasattr(model, "read_vocabulary"):   # a bag of n-grams hashes its tokens' character n-grams
        model.read_vocabulary(strings)
    if o.init_embeddings is not None:   # e.g. an LSTM classifier on word2vec vectors
        from lmforge.training.embedding_init import freeze_embedding, init_embeddings

        report = init_embeddings(model, strings, o.init_embeddings)
        print(report.describe(), file=sys.stderr)
        if o.freeze_embeddings:
            freeze_embedding(model)
    return model, tokenizer, o.model, asdict(config), o.preset


def _class_weights(train_labels, n: int, how: str, multi_label: bool, tagging: bool) -> torch.Tensor:
    if how == "none" or multi_label:
        return torch.ones(n)
    ids = np.concatenate([t[t >= 0] for t in train_labels]) if tagging else np.asarray(train_labels)
    counts = np.bincount(ids[ids >= 0], minlength=n).astype(np.float64)
    return torch.tensor(len(ids) / (n * np.maximum(counts, 1)), dtype=torch.float32)


def finetune(o: FinetuneOptions) -> dict:
    out = Path(o.out)
    if (out / RUN_CONFIG).exists() and not o.overwrite:
        raise InputError(f"{out}: already holds a run; choose another --out, or pass --overwrite.")
    fields = o.fields
    splits = read_task_splits(o.data, fields)
    if not splits.train:
        raise InputError(f"{o.data}: no training examples.")
    splits.train = _shrink_and_augment(splits.train, o)
    multi_label = fields.task == "classify" and any(isinstance(e.label, list) for e in splits.train)
    labels = Labels(["start", "end"]) if fields.task == "qa" else \
        Labels.from_training(_label_values(splits, fields), "tag" if fields.tagging else "label")
    if o.model in BASELINES:
        return _baseline(o, splits, labels, multi_label)
    backbone, tokenizer, family, model_section, preset = _backbone(o, splits)
    o = _settings(o, family)
    encoder = ALL_MODELS[family].kind == "encoder"
    if fields.task == "qa" and not (encoder or family in BIDIRECTIONAL):
        raise InputError(f"--task qa reads [CLS] question [SEP] context [SEP] in both directions: it needs an encoder "
                         f"backbone (bert, or bilstm/bigru from scratch), not {family}.")
    max_len = min(o.max_len, model_section.get("max_seq_len") or o.max_len)
    head = TaskHeadConfig("span" if fields.task == "qa" else "tag" if fields.tagging else "classify", len(labels.names),
                          o.pooling or DEFAULT_POOLING[family], o.dropout, multi_label)
    encoded, notes = {}, {}
    for split, items in splits:
        if items:
            encoded[split], notes[split] = _encode(items, tokenizer, encoder, max_len, labels, fields, multi_label)
    model = TaskModel(backbone, head)
    if fields.task != "qa":
        model.class_weights.copy_(_class_weights(encoded["train"].labels, head.n_labels, o.class_weights,
                                                 multi_label, fields.tagging))
    if o.freeze_backbone:   # a linear probe: only the head learns
        for parameter in model.backbone.parameters():
            parameter.requires_grad_(False)
    train_config = _train_config(o, max_len, len(encoded["train"].ids))
    _write_task_run(out, family, preset, model_section, head, train_config, fields, labels, o, tokenizer)
    start = time.perf_counter()
    summary = train(TrainSetup(out, model, train_config, np.zeros(0, dtype=np.int64), None, tokenizer, family,
                               task=TaskTraining(head.task, encoded["train"], encoded.get("valid"),
                                                 head.n_labels, tokenizer.pad_id or 0, multi_label)))
    seconds = time.perf_counter() - start
    result = {"out": str(out), "task": fields.task, "family": family, "init": str(o.init) if o.init else None,
              "examples": {split: len(getattr(splits, split)) for split in encoded}, "labels": labels.names,
              "train_seconds": summary["train_time"], "seconds": seconds, "steps": summary["steps"],
              "examples_per_s": summary["steps"] * o.batch_size / max(summary["train_time"], 1e-9),
              "best_val_score": summary["best_val_score"], "best_step": summary["best_step"], "notes": notes}
    for split in ("valid", "test"):
        if split in encoded:
            result[split] = evaluate_task_run(out, o.data, split, items=getattr(splits, split))
    atomic_write_text(out / "report.json", json.dumps(result, indent=2, default=str) + "\n")
    return result


def _train_config(o: FinetuneOptions, max_len: int, n_train: int) -> TrainConfig:
    """AdamW, 10% warm-up and cosine decay over the epochs (or --max-time), validation twice an epoch."""
    steps_per_epoch = max(1, -(-n_train // o.batch_size))
    return TrainConfig(batch_size=o.batch_size, seq_len=max_len, lr=o.lr, weight_decay=0.01,
                       max_steps=None if o.max_time else max(1, round(o.epochs * steps_per_epoch)),
                       max_time=o.max_time, warmup_fraction=0.1, eval_every=None if o.max_time else
                       max(1, steps_per_epoch // 2), checkpoint_every=10**9, checkpoint_minutes=None,
                       log_every=10, seed=o.seed, threads=o.threads, device=o.device, patience=o.patience,
                       grad_clip=1.0, layer_decay=o.layer_decay)


def train_further(task_run: TaskRun, out: Path, epochs: float, lr: float, seed: int = 1,
                  threads: int | None = None) -> dict:
    """Train a loaded task model again on its run's own training split, keeping the best weights by the
    validation metric in `out` (which already holds the run's config and tokenizer). Pruning uses it to
    recover accuracy; weights that are exactly zero get zero gradients (see `keep_zeros`), so they stay zero."""
    fields, labels, tokenizer = task_run.fields, task_run.labels, task_run.tokenizer
    splits = read_task_splits(task_run.run.corpus, fields)
    multi_label = task_run.model.head_config.multi_label
    encoded = {split: _encode(items, tokenizer, task_run.encoder, task_run.max_len, labels, fields, multi_label)[0]
               for split, items in splits if items and split in ("train", "valid")}
    o = FinetuneOptions(out=out, data=task_run.run.corpus, fields=fields, epochs=epochs, lr=lr, seed=seed,
                        threads=threads)
    head = task_run.model.head_config
    summary = train(TrainSetup(out, task_run.model.train(), _train_config(o, task_run.max_len,
                                                                          len(encoded["train"].ids)),
                               np.zeros(0, dtype=np.int64), None, tokenizer, task_run.run.family,
                               task=TaskTraining(head.task, encoded["train"], encoded.get("valid"), head.n_labels,
                                                 tokenizer.pad_id or 0, multi_label)))
    return {"epochs": epochs, "lr": lr, "train_seconds": summary["train_time"], "steps": summary["steps"],
            "best_val_score": summary["best_val_score"]}


def _shrink_and_augment(train: list, o: FinetuneOptions) -> list:
    if not 0 < o.train_fraction <= 1:
        raise InputError(f"--train-fraction {o.train_fraction}: must be in (0, 1].")
    if o.train_fraction < 1:
        from lmforge.data.pipeline import hash_fraction

        train = [e for e in train if hash_fraction(getattr(e, "text", None) or " ".join(e.words) + "#")
                 < o.train_fraction]
    if o.augment is None:
        return train
    if o.fields.tagging:
        raise InputError("--augment changes words, which would misalign tags: it is for classification tasks.")
    from lmforge.tasks.augment import Synonyms, augment_examples

    synonyms = None
    if o.augment_vectors is not None:
        from lmforge.embeddings.vectors import read_vectors

        synonyms = Synonyms(read_vectors(o.augment_vectors))
    return augment_examples(train, o.augment, o.augment_factor, o.seed, synonyms)


def _encode(items, tokenizer, encoder, max_len, labels, fields, multi_label):
    if fields.task == "qa":
        windows = windows_of(items, tokenizer, max_len, fields.qa_stride)
        return qa_encoded(windows), {"windows": len(windows),
                                     "windows_with_answer": sum(w.start > 0 for w in windows)}
    if fields.tagging:
        enc, unseen, split = encode_tagging(items, tokenizer, encoder, max_len, labels)
        return enc, {"unseen_labels": unseen, "sentences_continued_past_max_len": split}
    enc, unseen = encode_classification(items, tokenizer, encoder, max_len, labels, multi_label, fields.chunks)
    return enc, {"unseen_labels": unseen, **({"windows": len(enc.ids)} if enc.origin else {})}


def _write_task_run(out: Path, family, preset, model_section, head, train_config, fields, labels, o, tokenizer):
    out.mkdir(parents=True, exist_ok=True)
    if Path(tokenizer.path).resolve() != (out / "tokenizer.json").resolve():   # a trained word tokenizer is there
        shutil.copyfile(tokenizer.path, out / "tokenizer.json")
    contract = RunConfig(family, preset or "", head.task, "", tokenizer.sha256, fields.task, labels.names,
                         str(o.init) if o.init else None, source_path(o.data))
    sections = contract.sections()
    task = {**fields.describe(), "max_len": train_config.seq_len}
    atomic_write_text(out / RUN_CONFIG, to_toml({"run": sections["run"], "model": model_section, "head": asdict(head),
                                                 "task": task, "train": asdict(train_config),
                                                 "data": sections["data"]}))


def _baseline(o: FinetuneOptions, splits, labels: Labels, multi_label: bool) -> dict:
    fields, out = o.fields, Path(o.out)
    if multi_label:
        raise InputError(f"--model {o.model}: multi-label data needs a neural model (the baselines are single-label).")
    start = time.perf_counter()
    if o.model == "overlap":
        if fields.task != "qa":
            raise InputError("--model overlap is the sliding-window QA baseline (--task qa).")
        model = OverlapQA.fit(splits.train)
    elif o.model == "jieba":
        if fields.task != "segment":
            raise InputError("--model jieba is the Chinese segmentation reference (--task segment).")
        model = JiebaSegmenter()
    elif o.model == "most-frequent-tag":
        if not fields.tagging:
            raise InputError("--model most-frequent-tag is a tagging baseline (--task tag or segment).")
        model = MostFrequentTag.fit(splits.train, labels.names)
    else:
        if fields.task != "classify":
            raise InputError(f"--model {o.model} is a classification baseline; for --task tag use most-frequent-tag.")
        y, _ = labels.ids([e.label for e in splits.train])
        model = TfidfLinear.fit(o.model, [_pair(e) for e in splits.train], y, labels.names,
                                "balanced" if o.class_weights == "balanced" else None, o.seed)
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    contract = RunConfig(o.model, "", fields.task, "", "", fields.task, labels.names, None, source_path(o.data))
    sections = contract.sections()
    atomic_write_text(out / RUN_CONFIG, to_toml({"run": sections["run"], "task": fields.describe(),
                                                 "data": sections["data"]}))
    atomic_write_text(out / "metrics.jsonl", json.dumps({"step": 0, "train_time": seconds}) + "\n")
    result = {"out": str(out), "task": fields.task, "family": o.model, "labels": labels.names, "train_seconds": seconds,
              "examples": {split: len(items) for split, items in splits}}
    for split, items in splits:
        if split != "train" and items:
            result[split] = evaluate_task_run(out, o.data, split, items=items)
    atomic_write_text(out / "report.json", json.dumps(result, indent=2, default=str) + "\n")
    return result


def _pair(example) -> str:
    return example.text if example.text2 is None else f"{example.text} ||| {example.text2}"


@dataclass
class TaskRun:
    run: RunConfig
    fields: TaskFields
    labels: Labels
    max_len: int
    model: object                     # TaskModel or a baseline
    tokenizer: Tokenizer | None
    encoder: bool = False

    @property
    def baseline(self) -> bool:
        return self.tokenizer is None


def load_task_run(run_dir: Path, device: str | torch.device = "cpu") -> TaskRun:
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    contract = run_contract(config, run_dir)
    if not contract.task:
        raise InputError(f"{run_dir}: not a fine-tuned task run (no task in {RUN_CONFIG}); fine-tune it first "
                         "(lmforge finetune --init RUN ...).")
    fields = build_config(TaskFields, {k: v for k, v in config.get("task", {}).items() if k != "max_len"},
                          source=str(run_dir / RUN_CONFIG))
    labels = Labels(contract.labels or [])
    if contract.family in BASELINES:
        return TaskRun(contract, fields, labels, 0, load_baseline(run_dir), None)
    spec = ALL_MODELS[contract.family]
    backbone = spec.module_cls(build_config(spec.config_cls, config.get("model", {}), spec.fixed,
                                            source=str(run_dir / RUN_CONFIG)))
    model = TaskModel(backbone, build_config(TaskHeadConfig, config.get("head", {}), source=str(run_dir / RUN_CONFIG)))
    load_weights(model, run_dir / "model.safetensors")
    return TaskRun(contract, fields, labels, int(config["task"]["max_len"]), model.to(device).eval(),
                   Tokenizer(run_dir), spec.kind == "encoder")


def run_outputs(task_run: TaskRun, items, device, batch_size: int = 64) -> list[np.ndarray]:
    """Class probabilities per example, or predicted tag names per sentence."""
    fields, labels = task_run.fields, task_run.labels
    if fields.task == "qa":
        return qa_outputs(task_run, items, device)
    if task_run.baseline:
        if fields.tagging:
            return [task_run.model.tags(s.words) for s in items]
        return list(softmax(task_run.model.logits([_pair(e) for e in items])))
    if fields.tagging:
        enc, _, _ = encode_tagging(items, task_run.tokenizer, task_run.encoder, task_run.max_len, labels)
    else:
        enc, _ = encode_classification(items, task_run.tokenizer, task_run.encoder, task_run.max_len, labels,
                                       task_run.model.head_config.multi_label, fields.chunks)
    logits = task_logits(task_run.model, enc.ids, enc.segments, batch_size, torch.device(device),
                         fields.tagging, task_run.tokenizer.pad_id or 0)
    if fields.tagging:   # the sequences of one sentence, in order, give its words' tags
        tags: list[list[str]] = [[] for _ in items]
        for (number, _), first, row in zip(enc.origin, enc.word_starts, logits):
            tags[number].extend(labels.names[i] for i in row[first].argmax(axis=1))
        return tags
    rows = np.stack(logits)
    if enc.origin is not None:   # a long text's windows: the mean of their logits
        rows = mean_by_origin(rows, enc.origin)
    if task_run.model.head_config.multi_label:
        return [1 / (1 + np.exp(-row)) for row in rows]
    return list(softmax(rows))


def evaluate_task_run(run: Path, data: str | None = None, split: str = "valid", slice_field: str | None = None,
                      positive: str | None = None, device: str = "cpu", items: list | None = None) -> dict:
    """The report of a task run on a split of its data (or of `data`); `items` are that split's examples
    when the caller has read them already (fine-tuning reports on the splits it just read)."""
    task_run = load_task_run(run, device)
    source = data or task_run.run.corpus
    # a file given with --data is all one split; the run's own data is split as fine-tuning split it
    whole_file = items is None and data is not None and Path(data).is_file()
    if items is None:
        items = read_eval_examples(source, task_run.fields, split) if whole_file \
            else getattr(read_task_splits(source, task_run.fields), split)
    if not items:
        raise InputError(f"{source}: no {split} examples to evaluate; pass --data FILE.")
    outputs = run_outputs(task_run, items, device)
    split = Path(source).name if whole_file else split
    if task_run.fields.task == "qa":
        return {"split": split, "data": str(source), **qa_report(items, outputs)}
    if task_run.fields.task == "segment":
        return {"split": split, "data": str(source), **segment_report(items, outputs)}
    if task_run.fields.task == "tag":
        return {"split": split, "data": str(source), **tag_report([s.tags for s in items], outputs)}
    if task_run.model.__class__.__name__ == "TaskModel" and task_run.model.head_config.multi_label:
        return _multi_label_report(items, outputs, task_run.labels)
    gold, unseen = task_run.labels.ids([e.label for e in items])
    slices = None
    if slice_field is not None:
        missing = [e.source for e in items if slice_field not in e.fields]
        if missing:
            raise InputError(f"{missing[0]}: no field {slice_field!r} for --slice-field ({len(missing)} examples lack "
                             "it).")
        slices = [e.fields[slice_field] for e in items]
    report = classify_report(np.stack(outputs), gold, task_run.labels.names, slices, positive)
    report.update(split=split, data=str(source), unseen_labels=unseen)
    plot_confusion(report, Path(run) / f"confusion_{split}.png")
    return report


def _multi_label_report(items, outputs, labels: Labels) -> dict:
    gold, _ = labels.multi_hot([e.label if isinstance(e.label, list) else [e.label] for e in items])
    predicted = np.stack(outputs) > 0.5
    truth = gold > 0.5
    tp = (predicted & truth).sum()
    return {"examples": len(items), "micro_f1": float(2 * tp / max(predicted.sum() + truth.sum(), 1)),
            "exact_match": float((predicted == truth).all(axis=1).mean())}


def predict(task_run: TaskRun, items, device: str = "cpu") -> list[dict]:
    outputs = run_outputs(task_run, items, device)
    if task_run.fields.task == "qa":
        return [{"question": e.question, "answer": a} for e, a in zip(items, outputs)]
    if task_run.fields.task == "segment":
        return [dict(zip(("words", "pos"), from_bmes(s.words, tags))) for s, tags in zip(items, outputs)]
    if task_run.fields.task == "tag":
        return [{"words": s.words, "tags": tags} for s, tags in zip(items, outputs)]
    names = task_run.labels.names
    return [{"text": e.text, "label": names[int(np.argmax(p))],
             "probabilities": {name: float(v) for name, v in zip(names, p)}} for e, p in zip(items, outputs)]
