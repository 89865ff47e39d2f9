"""The fields a task run records in its [task] section (so eval and predict read new files the way
fine-tuning read the training data), and the loaders of each layout of examples: records (JSONL, CSV,
Parquet, the hub), CoNLL sentences (as characters with BMES tags for segmentation) and QA records.
Which loader a task reads with is its row's choice (tasks/table.py)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from lmforge.errors import InputError
from lmforge.tasks.data import Example, read_conll, read_records, to_example
from lmforge.tasks.qa import read_qa
from lmforge.tasks.segment import to_bmes


@dataclass
class TaskFields:
    task: str = "classify"
    """classify | pair | tag | segment | qa (a key of tasks/table.py TASKS)."""
    text_field: str = "text"
    text2_field: str | None = None
    label_field: str = "label"
    valid_fraction: float = 0.1
    joint_pos: bool = False
    """segment: tag characters with BMES joined to the word's POS."""
    qa_stride: int = 64
    """qa: tokens between the starts of a long context's windows."""
    chunks: int = 1
    """classify: windows of max_len tokens read from a long text (1: cut it)."""
    qa_unit: str = "auto"
    """qa: span (answers inside sliding windows), paragraph (the answer is a whole paragraph: rank them), or
    auto (paragraph when most training answers are whole paragraphs; a run records what was chosen)."""
    skip_bad_records: bool = False
    """records without the text or label field are skipped, counted and reported instead of stopping."""

    def describe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "skip_bad_records"}

    def overridden(self, **values) -> TaskFields:
        """These fields with the ones given (not None) replaced: eval and predict read a file whose
        fields are named otherwise than the training data's."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def example_loader(fields: TaskFields, need_label: bool = True):
    def load(path: Path):
        skipped: list[str] = []
        for record, where in read_records(path):
            try:
                yield to_example(record, where, fields.text_field, fields.label_field, fields.text2_field, need_label)
            except InputError as error:
                if not fields.skip_bad_records:
                    raise InputError(f"{error} Or pass --skip-bad-records to skip and count such records.") \
                        from None
                skipped.append(where)
        if skipped:
            print(f"lmforge: warning: {path}: skipped {len(skipped)} records without the text or label field "
                  f"(first: {skipped[0]})", file=sys.stderr)
    return load


def hub_example(fields: TaskFields):
    return lambda record, where: to_example(record, where, fields.text_field, fields.label_field, fields.text2_field)


def sentence_loader(fields: TaskFields, characters: bool):
    """CoNLL sentences; for segmentation (`characters`), as characters with BMES tags."""
    if not characters:
        return read_conll

    def load(path: Path):
        return (to_bmes(sentence, fields.joint_pos) for sentence in read_conll(path))
    return load


def qa_loader(path: Path):
    examples, skipped = read_qa(path)
    if skipped:
        print(f"lmforge: warning: {len(skipped)} QA records skipped: the answer is not the context's text at "
              f"answer_start (first: {skipped[0]})", file=sys.stderr)
    return examples


def texts_as_examples(texts: list[str]) -> list[Example]:
    return [Example(text, None, None, {}, f"argument {i + 1}") for i, text in enumerate(texts)]
