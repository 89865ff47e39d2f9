"""Task runs applied to new items: a fine-tuned model (or a classical baseline) rebuilt from its run
directory, its outputs on items (class probabilities, tags, answers) and per-example predictions.
Nothing here trains; the task rows (tasks/table.py) decode logits into outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmforge.artifacts import load_weights
from lmforge.config import build_config
from lmforge.errors import InputError
from lmforge.models import ALL_MODELS
from lmforge.models.task import TaskHeadConfig, TaskModel
from lmforge.runs import Run, open_run
from lmforge.tasks.baselines import load_baseline
from lmforge.tasks.batches import task_logits
from lmforge.tasks.encode import Labels
from lmforge.tasks.multilabel import load_thresholds
from lmforge.tasks.reading import TaskFields
from lmforge.tasks.table import TASKS, Task
from lmforge.tokenization.tokenizer import Tokenizer


@dataclass
class TaskRun:
    run: Run
    fields: TaskFields
    labels: Labels
    max_len: int
    model: object                     # TaskModel or a baseline
    tokenizer: Tokenizer | None
    encoder: bool = False
    thresholds: np.ndarray | None = None   # multi-label: each label's, chosen on the validation split

    @property
    def baseline(self) -> bool:
        return self.tokenizer is None

    @property
    def task(self) -> Task:
        return TASKS[self.fields.task]

    @property
    def multi_label(self) -> bool:
        if self.baseline:
            return bool(getattr(self.model, "multi_label", False))
        return self.model.head_config.multi_label


def _fields(run: Run) -> TaskFields:
    """The [task] section (its max_len is the encoder's, read on its own)."""
    raw = run.raw("task")
    raw.pop("max_len", None)
    return build_config(TaskFields, raw, source=f"{run.config_path} [task]")


def load_task_run(run_dir: Path | Run, device: str | torch.device = "cpu", verb: str = "predict") -> TaskRun:
    """The task model (eval mode, on `device`) or baseline of a task run."""
    run = run_dir if isinstance(run_dir, Run) else open_run(run_dir)
    run.require(verb, "task", "baseline")
    run.warn_if_interrupted(verb)
    fields, labels = _fields(run), Labels(run.contract.labels or [])
    thresholds = load_thresholds(run.path, labels.names)
    if run.contract.kind == "baseline":
        return TaskRun(run, fields, labels, 0, load_baseline(run.path), None, thresholds=thresholds)
    spec = ALL_MODELS[run.family]
    backbone = spec.module_cls(run.section("model", spec.config_cls, spec.fixed))
    model = TaskModel(backbone, run.section("head", TaskHeadConfig))
    load_weights(model, run.path / "model.safetensors")
    return TaskRun(run, fields, labels, int(run.raw("task")["max_len"]), model.to(device).eval(), Tokenizer(run.path),
                   spec.kind == "encoder", thresholds)


def task_outputs(task_run: TaskRun, items, device="cpu") -> list:
    """Per item what its task predicts: class probabilities, tag names per word, or answer text."""
    task = task_run.task
    if task_run.baseline:
        return task.baseline_outputs(task_run.model, items)
    encoded, _ = task.encode(items, task_run.tokenizer, task_run.encoder, task_run.max_len, task_run.labels,
                             task_run.fields, task_run.multi_label)
    logits = task_logits(task_run.model, encoded.ids, encoded.segments, task.predict_batch, torch.device(device),
                         task.per_token, task_run.tokenizer.pad_id or 0)
    return task.outputs(logits, encoded, items, task_run.labels, task_run.multi_label)


def predict(task_run: TaskRun, items, device: str = "cpu") -> list[dict]:
    """One JSON-ready prediction per item."""
    outputs = task_outputs(task_run, items, device)
    extra = {"thresholds": task_run.thresholds} if task_run.multi_label else {}
    return [task_run.task.prediction(item, output, task_run.labels, task_run.multi_label, **extra)
            for item, output in zip(items, outputs)]


@dataclass
class PredictConfig:
    run: Path = field(default=Path("."), metadata={"required": True})
    """fine-tuned run directory (or baseline)"""
    texts: list[str] = field(default_factory=list, metadata={"positional": True, "nargs": "*"})
    """texts to label (tagging: words separated by spaces)"""
    input: Path | None = None
    """a JSONL/CSV file: its text field (the run's) on every line (QA: question and context fields)"""
    text_field: str | None = None
    """--input: the field of the text (None: the run's)"""
    text2_field: str | None = None
    """--input: the field of a pair's second text (None: the run's)"""
    device: str = "cpu"
    """cpu, cuda, mps"""


def predict_run(c: PredictConfig) -> dict:
    """{"predictions": one per text (or --input record), "seconds": the time the model took}."""
    task_run = load_task_run(c.run, c.device)
    task = task_run.task
    if c.input is None and not c.texts and task.name != "qa":
        raise InputError("predict: give texts to label, or --input FILE.")
    fields = task_run.fields.overridden(text_field=c.text_field, text2_field=c.text2_field)
    records = task.read_input(c.input, fields) if c.input is not None else None
    items = task.items_to_predict(c.texts, records, fields)
    start = time.perf_counter()
    predictions = predict(task_run, items, c.device)
    return {"predictions": predictions, "seconds": time.perf_counter() - start}
