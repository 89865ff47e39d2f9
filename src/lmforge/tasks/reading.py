"""The examples of a task from `--data`, with the fields a run records (so eval and predict read new
files the way fine-tuning read the training data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from lmforge.tasks.data import Example, Splits, read_conll, read_hub_splits, read_records, read_splits, to_example


@dataclass
class TaskFields:
    task: str = "classify"          # classify | tag
    text_field: str = "text"
    text2_field: str | None = None
    label_field: str = "label"
    valid_fraction: float = 0.1

    def describe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _example_loader(fields: TaskFields, need_label: bool = True):
    def load(path: Path):
        for record, where in read_records(path):
            yield to_example(record, where, fields.text_field, fields.label_field, fields.text2_field, need_label)
    return load


def read_task_splits(source: str, fields: TaskFields) -> Splits:
    if fields.task == "tag":
        return read_splits(source, read_conll, lambda s: " ".join(s.words), fields.valid_fraction)
    if str(source).startswith("hf:"):
        return read_hub_splits(str(source), lambda record, where: to_example(
            record, where, fields.text_field, fields.label_field, fields.text2_field))
    return read_splits(source, _example_loader(fields), lambda e: e.text + (e.text2 or ""), fields.valid_fraction)


def read_eval_examples(source: str, fields: TaskFields, split: str) -> list:
    """A file: all its examples; a folder or hub dataset: the split asked for (valid or test)."""
    path = Path(source)
    if path.is_file():
        if fields.task == "tag":
            return list(read_conll(path))
        return list(_example_loader(fields)(path))
    return getattr(read_task_splits(source, fields), split)


def texts_as_examples(texts: list[str]) -> list[Example]:
    return [Example(text, None, None, {}, f"argument {i + 1}") for i, text in enumerate(texts)]
