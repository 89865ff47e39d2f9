"""Extractive QA on the task machinery: windows as encoded examples with (start, end) targets, answers
from a model's span logits, and the report (SQuAD exact match and token F1)."""

from __future__ import annotations

import numpy as np
import torch

from lmforge.evaluation.tagging import qa_exact_match, qa_f1
from lmforge.tasks.encode import Encoded
from lmforge.tasks.qa import answers, windows_of
from lmforge.training.finetune import task_logits

MAX_ANSWER_TOKENS = 512


def qa_encoded(windows) -> Encoded:
    return Encoded([w.ids for w in windows], [w.segments for w in windows],
                   np.array([[w.start, w.end] for w in windows], dtype=np.int64))


def qa_outputs(task_run, examples, device) -> list[str]:
    if task_run.baseline:
        return [task_run.model.answer(e) for e in examples]
    windows = windows_of(examples, task_run.tokenizer, task_run.max_len, task_run.fields.qa_stride)
    logits = task_logits(task_run.model, [w.ids for w in windows], [w.segments for w in windows], 32,
                         torch.device(device), True, task_run.tokenizer.pad_id or 0)
    return answers(examples, windows, logits, MAX_ANSWER_TOKENS)


def qa_report(examples, predicted: list[str]) -> dict:
    gold = [e.answer or "" for e in examples]
    return {"examples": len(examples),
            "exact_match": float(np.mean([qa_exact_match(g, p) for g, p in zip(gold, predicted)])),
            "f1": float(np.mean([qa_f1(g, p) for g, p in zip(gold, predicted)]))}
