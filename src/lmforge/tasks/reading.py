"""The examples of a task from `--data`, with the fields a run records (so eval and predict read new
files the way fine-tuning read the training data)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from lmforge.tasks.data import Example, Splits, read_conll, read_hub_splits, read_records, read_splits, to_example
from lmforge.tasks.qa import read_qa
from lmforge.tasks.segment import to_bmes


@dataclass
class TaskFields:
    task: str = "classify"          # classify | tag | segment
    text_field: str = "text"
    text2_field: str | None = None
    label_field: str = "label"
    valid_fraction: float = 0.1
    joint_pos: bool = False         # segment: tag characters with BMES joined to the word's POS
    qa_stride: int = 64             # qa: tokens between the starts of a long context's windows
    chunks: int = 1                 # classify: windows of max_len tokens read from a long text (1: cut it)

    @property
    def tagging(self) -> bool:
        return self.task in ("tag", "segment")

    def describe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _example_loader(fields: TaskFields, need_label: bool = True):
    def load(path: Path):
        for record, where in read_records(path):
            yield to_example(record, where, fields.text_field, fields.label_field, fields.text2_field, need_label)
    return load


def _sentences(fields: TaskFields):
    """CoNLL sentences; for segmentation, as characters with BMES tags."""
    if fields.task != "segment":
        return read_conll

    def load(path: Path):
        return (to_bmes(sentence, fields.joint_pos) for sentence in read_conll(path))
    return load


def _qa_loader(path: Path):
    examples, skipped = read_qa(path)
    if skipped:
        print(f"lmforge: warning: {len(skipped)} QA records skipped: the answer is not the context's text at "
              f"answer_start (first: {skipped[0]})", file=sys.stderr)
    return examples


def read_task_splits(source: str, fields: TaskFields) -> Splits:
    if fields.task == "qa":
        return read_splits(source, _qa_loader, lambda e: e.question + e.context, fields.valid_fraction)
    if fields.tagging:
        return read_splits(source, _sentences(fields), lambda s: " ".join(s.words), fields.valid_fraction)
    if str(source).startswith("hf:"):
        return read_hub_splits(str(source), lambda record, where: to_example(
            record, where, fields.text_field, fields.label_field, fields.text2_field))
    return read_splits(source, _example_loader(fields), lambda e: e.text + (e.text2 or ""), fields.valid_fraction)


def read_eval_examples(source: str, fields: TaskFields, split: str) -> list:
    """A file: all its examples; a folder or hub dataset: the split asked for (valid or test)."""
    path = Path(source)
    if path.is_file():
        if fields.task == "qa":
            return _qa_loader(path)
        if fields.tagging:
            return list(_sentences(fields)(path))
        return list(_example_loader(fields)(path))
    return getattr(read_task_splits(source, fields), split)


def texts_as_examples(texts: list[str]) -> list[Example]:
    return [Example(text, None, None, {}, f"argument {i + 1}") for i, text in enumerate(texts)]
