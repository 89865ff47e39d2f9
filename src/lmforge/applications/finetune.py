"""Fine-tuning runs, end to end: read the task's examples, take a backbone (a trained run with --init, or
a fresh one of a family), put the task's head on it, train it with the one loop, keep the best weights
by the validation metric, and report; or fit a classical baseline. The task row (tasks/table.py) does
everything that depends on the task; this file orchestrates. A notebook calls `finetune(FinetuneConfig(...))`."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from lmforge.applications.body_defaults import (
    BIDIRECTIONAL,
    DEFAULT_POOLING,
    FAMILY_DEFAULTS,
    GENERAL_DEFAULTS,
    TASK_FAMILY_DEFAULTS,
    TASK_MODEL_DEFAULTS,
    WORD_VOCABULARY,
    WORDPIECE_VOCABULARY,
    data_defaults,
)
from lmforge.applications.evaluate import evaluate_task_run
from lmforge.artifacts import atomic_write_text
from lmforge.config import build_config
from lmforge.errors import InputError
from lmforge.inference.loading import load
from lmforge.models import ALL_MODELS
from lmforge.models.heads import POOLINGS
from lmforge.models.task import TaskHeadConfig, TaskModel
from lmforge.runs import RUN_CONFIG, RunConfig, clear_run, source_path, write_run
from lmforge.tasks.baselines import BASELINES, fit_baseline
from lmforge.tasks.encode import Labels
from lmforge.tasks.reading import TaskFields
from lmforge.tasks.table import TASKS, Task
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.config import TrainConfig
from lmforge.training.loop import TrainSetup, train
from lmforge.training.task_spec import task_spec


@dataclass
class FinetuneConfig:
    task: str = field(default="classify", metadata={"required": True, "choices": (*TASKS, "chat")})
    """classify (texts), pair (two texts: --text2-field), tag (CoNLL token<TAB>tag files), segment (Chinese word
    segmentation from CoNLL word<TAB>POS files), qa (extractive, SQuAD layout: question, context, answer,
    answer_start), chat (a decoder run on conversations: JSONL messages lists or prompt/response records; the
    loss reads the replies only)"""
    data: str = field(default="", metadata={"required": True})
    """file or folder (train/valid/test files split by name), or hf:NAME[:CONFIG]"""
    out: Path = field(default=Path("."), metadata={"required": True})
    """run directory to create"""
    text_field: str = "text"
    """field of the text"""
    text2_field: str | None = None
    """the second text of a pair"""
    label_field: str = "label"
    """label (a list makes the task multi-label)"""
    joint_pos: bool = False
    """segment: also tag each word's POS (BMES-POS)"""
    messages_field: str = "messages"
    """chat: field of a conversation's list of {role, content} messages"""
    prompt_field: str = "prompt"
    """chat: without a messages list, the user's message"""
    response_field: str = "response"
    """chat: ... and the reply to it"""
    system: str | None = None
    """chat: a system message put before every conversation"""
    qa_stride: int = 64
    """qa: tokens between a long context's windows"""
    qa_unit: str = field(default="auto", metadata={"choices": ("auto", "span", "paragraph")})
    """qa: span (answers inside sliding windows), paragraph (answers are whole paragraphs, ranked), auto (paragraph
    when most training answers are whole paragraphs)"""
    chunks: int = 1
    """classify: read up to this many windows of --max-len tokens of a long text (evenly spread); each is trained
    with the text's label, a prediction averages their logits (1: a long text is cut)"""
    valid_fraction: float = 0.1
    """without named files: the hash-split share of valid examples"""
    init: Path | None = None
    """trained run whose backbone and tokenizer to fine-tune"""
    model: str | None = None
    """instead of --init: a family from scratch (gpt, bert, lstm, gru, rnn with --tokenizer; bilstm, bigru, fasttext
    on a word tokenizer of the training texts unless --tokenizer) or a baseline: tfidf-logreg, tfidf-svm,
    most-frequent-tag, jieba, overlap"""
    preset: str = "tiny"
    """size of a backbone from scratch"""
    tokenizer: Path | None = None
    """tokenizer of a backbone from scratch"""
    init_embeddings: Path | None = None
    """with --model: word vectors (embed run, word2vec/GloVe file) for the token embedding"""
    freeze_embeddings: bool = False
    """keep those embeddings fixed"""
    model_args: list[str] = field(default_factory=list, metadata={"nargs": "*", "metavar": "FIELD=VALUE"})
    """with --model: model config fields over the preset, e.g. d_embed=100 tie_embeddings=false"""
    max_len: int | None = None
    """tokens per example, longer ones are cut (None: 128; fasttext 1024)"""
    epochs: float | None = None
    """passes over the training set (None: 3; fasttext 10, bilstm/bigru 6, tagging with them 3)"""
    max_time: float | None = None
    """seconds of training instead of --epochs"""
    pretrain_time: float | None = None
    """first continue pretraining the backbone this many seconds on the task's training texts (its own LM objective:
    masked LM for bert, causal LM for gpt/lstm/gru/rnn), then fine-tune"""
    batch_size: int | None = None
    """examples per step (None: 32; tagging with bilstm/bigru 64; chat: 8 windows of --max-len tokens)"""
    lr: float | None = None
    """peak learning rate (AdamW, 10% warm-up, cosine; None: 5e-4; fasttext 1e-2, bilstm/bigru 2e-3, tagging with
    them 3e-3)"""
    pooling: str | None = field(default=None, metadata={"choices": POOLINGS})
    """classify: None means cls for encoders, max for bilstm/bigru, mean for fasttext, last otherwise"""
    dropout: float | None = None
    """before the head (None: 0.1; fasttext 0, bilstm/bigru 0.3)"""
    class_weights: str = field(default="none", metadata={"choices": ("none", "balanced")})
    """balanced: weight the loss by inverse class frequency (unbalanced labels)"""
    patience: int | None = None
    """stop after this many evaluations without a better score"""
    layer_decay: float | None = None
    """layer-wise LR decay, e.g. 0.8: each Transformer block learns at 0.8x the one above"""
    freeze_backbone: bool = False
    """train the head only (a linear probe)"""
    augment: str | None = field(default=None, metadata={"choices": ("eda", "char-noise", "back-translate")})
    """augment the training examples: EDA (synonyms from --augment-vectors, insertion, swap, deletion),
    character noise, or back-translation through --augment-via"""
    augment_factor: float = 2.0
    """training set size multiplier (2: doubled)"""
    augment_vectors: Path | None = None
    """word vectors (embed run or file) for EDA synonyms"""
    augment_via: str | None = field(default=None, metadata={"metavar": "RUN1,RUN2"})
    """back-translation: two translation runs, into a pivot language and back (e.g. runs/en-de,runs/de-en)"""
    train_fraction: float = 1.0
    """train on this deterministic share of the training examples (e.g. 0.1)"""
    seed: int = 1
    """seed of the head, the backbone from scratch and the data order"""
    threads: int | None = None
    """torch CPU threads (None: the cores other processes leave free)"""
    device: str = "auto"
    """auto, cpu, cuda, mps"""
    skip_bad_records: bool = False
    """skip records without the text or label field (counted and reported) instead of stopping"""
    overwrite: bool = False
    """replace a run already in --out"""

    def __post_init__(self) -> None:
        if (self.init is None) == (self.model is None):
            raise ValueError("give --init RUN (fine-tune a trained backbone) or --model NAME (from scratch or a "
                             "baseline), one of them.")
        for name in ("max_len", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive.")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"--layer-decay {self.layer_decay}: must be in (0, 1].")
        if (self.epochs is not None and self.epochs <= 0) or (self.lr is not None and self.lr <= 0) \
                or not 0 < self.valid_fraction < 1:
            raise ValueError("--epochs and --lr must be positive and --valid-fraction in (0, 1).")
        if self.pretrain_time is not None and self.pretrain_time <= 0:
            raise ValueError(f"--pretrain-time must be positive, got {self.pretrain_time}.")
        if self.qa_stride <= 0 or self.chunks <= 0:
            raise ValueError(f"--qa-stride and --chunks must be positive, got {self.qa_stride} and {self.chunks}.")
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"--train-fraction {self.train_fraction}: must be in (0, 1].")
        if self.task != "chat":
            TASKS[self.task].check(self.fields)

    @property
    def fields(self) -> TaskFields:
        """How the task reads its data: the [task] section of the run."""
        return TaskFields(self.task, self.text_field, self.text2_field, self.label_field, self.valid_fraction,
                          self.joint_pos, self.qa_stride, self.chunks, qa_unit=self.qa_unit,
                          skip_bad_records=self.skip_bad_records)


@dataclass
class FinetuneOptions:
    """The [finetune] section: what only fine-tuning reads."""

    patience: int | None = None
    layer_decay: float | None = None


def _settings(c: FinetuneConfig, family: str) -> FinetuneConfig:
    """The config with the family's defaults where none was given."""
    defaults = {**FAMILY_DEFAULTS.get(family, GENERAL_DEFAULTS), **TASK_FAMILY_DEFAULTS.get((c.task, family), {})}
    return replace(c, **{name: value for name, value in defaults.items() if getattr(c, name) is None})


def model_args(pairs: list[str]) -> dict:
    """FIELD=VALUE strings as typed values (true/false, numbers, else text)."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"--model-args {pair!r}: write FIELD=VALUE (e.g. d_embed=100).")
        out[name.replace("-", "_")] = {"true": True, "false": False}.get(value.lower(), _number(value))
    return out


def _number(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _word_tokenizer(c: FinetuneConfig, task: Task, train_items) -> Tokenizer:
    """A tokenizer of the task's kind (task.word_tokenizer: words, or WordPiece for tagging) trained on the
    training texts and written into the run (a task body's default)."""
    from lmforge.tokenization.training import train_word, train_wordpiece

    out = Path(c.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = task.word_texts(train_items)
    trained = train_wordpiece(texts, WORDPIECE_VOCABULARY) if task.word_tokenizer == "wordpiece" else \
        train_word(texts, WORD_VOCABULARY, lowercase=task.lowercase_words)
    trained.save(str(out / "tokenizer.json"))
    return Tokenizer(out / "tokenizer.json")


def _backbone(c: FinetuneConfig, task: Task, train_items, resume: bool = False):
    """(backbone module, tokenizer, family, model config section, preset); a resumed run keeps its
    tokenizer (the weights come from its checkpoint)."""
    if c.init is not None:
        loaded = load(c.init, "finetune --init", ("lm",))   # refuses a fine-tuned run: start from a pretrained one
        return loaded.model.train(), loaded.tokenizer, loaded.run.family, loaded.run.raw("model"), \
            loaded.run.contract.preset
    if c.model not in ALL_MODELS:
        raise InputError(f"--model {c.model}: choose a family ({', '.join(ALL_MODELS)}) or a baseline "
                         f"({', '.join(BASELINES)}), or pass --init RUN.")
    spec = ALL_MODELS[c.model]
    if c.tokenizer is None and spec.kind != "task":
        raise InputError(f"--model {c.model} from scratch needs --tokenizer DIR (e.g. the tokenizer of the run you "
                         "compare it with); or start from a trained run with --init RUN.")
    tokenizer = Tokenizer(c.tokenizer) if c.tokenizer is not None else \
        Tokenizer(Path(c.out) / "tokenizer.json") if resume else _word_tokenizer(c, task, train_items)
    if c.preset not in spec.presets:
        raise InputError(f"--preset {c.preset}: {c.model} presets are {', '.join(spec.presets)}.")
    config = build_config(spec.config_cls, spec.presets[c.preset], TASK_MODEL_DEFAULTS.get((c.task, c.model), {}),
                          data_defaults(c.model, task, train_items), model_args(c.model_args),
                          {"vocab_size": tokenizer.vocab_size}, spec.fixed, source="--model-args")
    torch.manual_seed(c.seed)
    model = spec.module_cls(config)
    specials = set(tokenizer.special_ids.values())
    strings = ["" if i in specials else tokenizer.hf.id_to_token(i) or "" for i in range(tokenizer.vocab_size)]
    if hasattr(model, "read_vocabulary"):   # a bag of n-grams hashes its tokens' character n-grams
        model.read_vocabulary(strings)
    if c.init_embeddings is not None:   # e.g. an LSTM classifier on word2vec vectors
        from lmforge.training.embedding_init import freeze_embedding, init_embeddings

        print(init_embeddings(model, strings, c.init_embeddings).describe(), file=sys.stderr)
        if c.freeze_embeddings:
            freeze_embedding(model)
    return model, tokenizer, c.model, asdict(config), c.preset


def _class_weights(train_labels, n: int, how: str, multi_label: bool, per_token: bool) -> torch.Tensor:
    if how == "none" or multi_label:
        return torch.ones(n)
    ids = np.concatenate([t[t >= 0] for t in train_labels]) if per_token else np.asarray(train_labels)
    counts = np.bincount(ids[ids >= 0], minlength=n).astype(np.float64)
    return torch.tensor(len(ids) / (n * np.maximum(counts, 1)), dtype=torch.float32)


def finetune(c: FinetuneConfig, resume: bool = False) -> dict:
    """Fine-tune (or fit a baseline), write the run, and report on its valid and test splits. `resume`
    continues the interrupted run in `c.out` (see resume_finetune)."""
    if c.task == "chat":
        from lmforge.applications.chat import finetune_chat

        return finetune_chat(c)
    out, task = Path(c.out), TASKS[c.task]
    if (out / RUN_CONFIG).exists() and not (c.overwrite or resume):
        raise InputError(f"{out}: already holds a run; choose another --out, pass --overwrite (it is replaced), or "
                         f"continue an interrupted one with `lmforge finetune --resume {out}`.")
    splits = task.read_splits(c.data, c.fields)
    if not splits.train:
        raise InputError(f"{c.data}: no training examples.")
    if c.overwrite and not resume:   # the data is readable: now the old run goes, every file of it
        clear_run(out)
    if c.task == "qa" and c.qa_unit == "auto":   # recorded as chosen, so eval and predict read alike
        from lmforge.tasks.qa import resolve_unit

        c = replace(c, qa_unit=resolve_unit(c.qa_unit, splits.train))
    splits.train = _shrink_and_augment(splits.train, c, task)
    multi_label, labels = task.multi_label(splits.train), task.labels(splits.train)
    if c.model in BASELINES:
        return _baseline(c, task, splits, labels, multi_label)
    backbone, tokenizer, family, model_section, preset = _backbone(c, task, splits.train, resume)
    c = _settings(c, family)
    encoder = ALL_MODELS[family].kind == "encoder"
    if task.needs_bidirectional and not (encoder or family in BIDIRECTIONAL):
        raise InputError(f"--task {task.name} reads [CLS] question [SEP] context [SEP] in both directions: it needs "
                         f"an encoder backbone (bert, or bilstm/bigru from scratch), not {family}.")
    adapted = None
    if c.pretrain_time and not resume:   # the resumed run's checkpoint holds the adapted weights
        from lmforge.applications.adapt import adapt_backbone

        adapted = adapt_backbone(backbone, family, preset, tokenizer, task.word_texts(splits.train), out,
                                 c.pretrain_time, c.seed, c.threads, c.device)
    max_len = min(c.max_len, model_section.get("max_seq_len") or c.max_len)
    head = TaskHeadConfig(task.head, len(labels.names), c.pooling or DEFAULT_POOLING[family], c.dropout, multi_label)
    encoded, notes = {}, {}
    for split, items in splits:
        if items:
            encoded[split], notes[split] = task.encode(items, tokenizer, encoder, max_len, labels, c.fields,
                                                       multi_label)
    model = TaskModel(backbone, head)
    if task.class_weighted:
        model.class_weights.copy_(_class_weights(encoded["train"].labels, head.n_labels, c.class_weights,
                                                 multi_label, task.per_token))
    if c.freeze_backbone:   # a linear probe: only the head learns
        for parameter in model.backbone.parameters():
            parameter.requires_grad_(False)
    train_config = _train_config(c, max_len, len(encoded["train"].ids))
    if not resume:
        _write_task_run(out, family, preset, model_section, head, train_config, c, labels, tokenizer)
    spec = task_spec(task, encoded["train"], encoded.get("valid"), head.n_labels, tokenizer.pad_id or 0, max_len,
                     multi_label, c.patience, c.layer_decay)
    start = time.perf_counter()
    summary = train(TrainSetup(out, model, train_config, spec, family, resume=resume,
                               resume_command="lmforge finetune --resume"))
    result = {"out": str(out), "task": task.name, "family": family, "init": str(c.init) if c.init else None,
              "examples": {split: len(getattr(splits, split)) for split in encoded}, "labels": labels.names,
              "train_seconds": summary["train_time"], "seconds": time.perf_counter() - start,
              "steps": summary["steps"],
              "examples_per_s": summary["steps"] * c.batch_size / max(summary["train_time"], 1e-9),
              "best_val_score": summary["best_val_score"], "best_step": summary["best_step"], "notes": notes,
              "pretrain": adapted}
    return _report_splits(out, c.data, splits, result, multi_label)


def _fit_thresholds(out: Path, valid: list) -> dict:
    """Multi-label: each label's threshold, chosen to maximise its F1 on the validation split (predict and
    eval read them from thresholds.json)."""
    from lmforge.inference.tasks import load_task_run, task_outputs
    from lmforge.tasks.multilabel import choose_thresholds, save_thresholds

    task_run = load_task_run(out, verb="finetune")
    probabilities = np.stack(task_outputs(task_run, valid))
    gold, _ = task_run.labels.multi_hot([e.label if isinstance(e.label, list) else [e.label] for e in valid])
    thresholds = choose_thresholds(probabilities, gold)
    save_thresholds(out, task_run.labels.names, thresholds)
    return dict(zip(task_run.labels.names, thresholds.tolist()))


def resume_finetune(run_dir: Path, threads: int | None = None) -> dict:
    """Continue an interrupted fine-tuning run from its last checkpoint with the settings it recorded:
    the same examples (read, shrunk and augmented again, deterministically), model, head and schedule,
    so it ends where the uninterrupted run would have."""
    from lmforge.runs import open_run
    from lmforge.training.checkpoint import latest_checkpoint

    run = open_run(run_dir).require("finetune --resume", "task")
    if "invocation" not in run.sections:
        raise InputError(f"{run.config_path}: written by an lmforge that did not record its finetune settings; "
                         "run the finetune command again with --overwrite.")
    if latest_checkpoint(run.path / "checkpoints") is None:
        raise InputError(f"{run.path}: no checkpoint to resume from; run the finetune command again with "
                         "--overwrite.")
    c = run.section("invocation", FinetuneConfig, {"out": run.path, "overwrite": False},
                    {"threads": threads} if threads else {})
    return finetune(c, resume=True)


def _report_splits(out: Path, data: str, splits, result: dict, multi_label: bool = False) -> dict:
    if multi_label and splits.valid:
        result["thresholds"] = _fit_thresholds(out, splits.valid)
    for split in ("valid", "test"):
        items = getattr(splits, split)
        if items:
            result[split] = evaluate_task_run(out, data, split, items=items)
    atomic_write_text(out / "report.json", json.dumps(result, indent=2, default=str) + "\n")
    return result


def _train_config(c: FinetuneConfig, max_len: int, n_train: int) -> TrainConfig:
    """AdamW, 10% warm-up and cosine decay over the epochs (or --max-time), validation twice an epoch."""
    steps_per_epoch = max(1, -(-n_train // c.batch_size))
    return TrainConfig(batch_size=c.batch_size, seq_len=max_len, lr=c.lr, weight_decay=0.01,
                       max_steps=None if c.max_time else max(1, round(c.epochs * steps_per_epoch)),
                       max_time=c.max_time, warmup_fraction=0.1, eval_every=None if c.max_time else
                       max(1, steps_per_epoch // 2), checkpoint_every=10**9, checkpoint_minutes=None,
                       log_every=10, seed=c.seed, threads=c.threads, device=c.device, grad_clip=1.0)


def train_further(task_run, out: Path, epochs: float, lr: float, seed: int = 1, threads: int | None = None) -> dict:
    """Train a loaded task model again on its run's own training split, keeping the best weights by the
    validation metric in `out` (which already holds the run's config and tokenizer). Pruning uses it to
    recover accuracy; weights that are exactly zero get zero gradients (see `keep_zeros`), so they stay zero."""
    task, fields, labels, tokenizer = task_run.task, task_run.fields, task_run.labels, task_run.tokenizer
    splits = task.read_splits(task_run.run.contract.corpus, fields)
    multi_label = task_run.model.head_config.multi_label
    encoded = {split: task.encode(items, tokenizer, task_run.encoder, task_run.max_len, labels, fields, multi_label)[0]
               for split, items in splits if items and split in ("train", "valid")}
    c = FinetuneConfig(task=fields.task, data=task_run.run.contract.corpus, out=out, init=task_run.run.path,
                       text2_field=fields.text2_field, epochs=epochs, lr=lr, seed=seed, threads=threads,
                       batch_size=GENERAL_DEFAULTS["batch_size"])
    head = task_run.model.head_config
    spec = task_spec(task, encoded["train"], encoded.get("valid"), head.n_labels, tokenizer.pad_id or 0,
                     task_run.max_len, multi_label)
    summary = train(TrainSetup(out, task_run.model.train(), _train_config(c, task_run.max_len,
                                                                          len(encoded["train"].ids)),
                               spec, task_run.run.family))
    return {"epochs": epochs, "lr": lr, "train_seconds": summary["train_time"], "steps": summary["steps"],
            "best_val_score": summary["best_val_score"]}


def _shrink_and_augment(train_items: list, c: FinetuneConfig, task: Task) -> list:
    if c.train_fraction < 1:
        from lmforge.data.pipeline import hash_fraction

        train_items = [e for e in train_items if hash_fraction(getattr(e, "text", None) or " ".join(e.words) + "#")
                       < c.train_fraction]
    if c.augment is None:
        return train_items
    if task.per_token:
        raise InputError("--augment changes words, which would misalign tags: it is for classification tasks.")
    from lmforge.tasks.augment import Synonyms, augment_examples

    synonyms = None
    if c.augment_vectors is not None:
        from lmforge.embeddings.vectors import read_vectors

        synonyms = Synonyms(read_vectors(c.augment_vectors))
    paraphrase = None
    if c.augment == "back-translate" and c.augment_via:
        from lmforge.applications.translation import round_trip

        paraphrase = round_trip([Path(p) for p in c.augment_via.split(",")])
    return augment_examples(train_items, c.augment, c.augment_factor, c.seed, synonyms, paraphrase)


def _write_task_run(out: Path, family, preset, model_section, head, train_config, c: FinetuneConfig, labels,
                    tokenizer) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if Path(tokenizer.path).resolve() != (out / "tokenizer.json").resolve():   # a trained word tokenizer is there
        shutil.copyfile(tokenizer.path, out / "tokenizer.json")
    contract = RunConfig(family, preset or "", head.task, "", tokenizer.sha256, c.task, labels.names,
                         str(c.init) if c.init else None, source_path(c.data), kind="task")
    write_run(out, contract, {"model": model_section, "head": head, "task": {**c.fields.describe(),
                                                                             "max_len": train_config.seq_len},
                              "train": train_config, "finetune": FinetuneOptions(c.patience, c.layer_decay),
                              "invocation": _invocation(c)})


def _invocation(c: FinetuneConfig) -> dict:
    """The command's settings, so `finetune --resume` rebuilds the same run (paths absolute)."""
    values = {k: v for k, v in asdict(c).items() if v is not None and k not in ("out", "overwrite")}
    for name in ("init", "tokenizer", "init_embeddings", "augment_vectors"):
        if values.get(name) is not None:
            values[name] = str(Path(values[name]).resolve())
    values["data"] = source_path(c.data)
    return values


def _baseline(c: FinetuneConfig, task: Task, splits, labels: Labels, multi_label: bool) -> dict:
    out = Path(c.out)
    if multi_label and c.model not in ("tfidf-logreg", "tfidf-svm"):
        raise InputError(f"--model {c.model}: multi-label data needs a neural model or tfidf-logreg/tfidf-svm.")
    start = time.perf_counter()
    model = fit_baseline(c.model, task.name, splits.train, labels, c.class_weights == "balanced", c.seed, multi_label,
                         c.qa_unit)
    seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    contract = RunConfig(c.model, "", task.name, "", "", task.name, labels.names, None, source_path(c.data),
                         kind="baseline")
    write_run(out, contract, {"task": c.fields.describe()})
    atomic_write_text(out / "metrics.jsonl", json.dumps({"step": 0, "train_time": seconds}) + "\n")
    result = {"out": str(out), "task": task.name, "family": c.model, "labels": labels.names, "train_seconds": seconds,
              "examples": {split: len(items) for split, items in splits}}
    return _report_splits(out, c.data, splits, result, multi_label)
