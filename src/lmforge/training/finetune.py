"""What the one training loop needs to fine-tune a task model: the task's sampler, objective and a
validation that scores the task's own metric (the loop keeps the best weights by it and can stop
early), and running a task model over encoded examples for evaluation and prediction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lmforge.evaluation.classification import confusion_matrix, precision_recall_f1
from lmforge.tasks.encode import IGNORE, Encoded, mean_by_origin
from lmforge.training.task_batches import TaskSampler, batches_in_order


@dataclass
class TaskTraining:
    objective: str                  # classify | tag
    train: Encoded
    valid: Encoded | None
    n_labels: int
    pad_id: int
    multi_label: bool = False

    @property
    def tagging(self) -> bool:
        return self.objective == "tag"

    @property
    def per_token(self) -> bool:
        """Logits per position (tags, QA spans) rather than per example."""
        return self.objective in ("tag", "span")

    def sampler(self, ctx) -> TaskSampler:
        return TaskSampler(self.train.ids, self.train.segments, self.train.labels, ctx.batch_size, ctx.grad_accum,
                           ctx.rank, ctx.world_size, ctx.seed, self.pad_id, self.tagging)

    def validation(self, batch_size: int, device, autocast_dtype) -> TaskValidation:
        return TaskValidation(self, batch_size, device, autocast_dtype)


@torch.no_grad()
def task_logits(model, ids, segments, batch_size: int, device, tagging: bool, pad_id: int,
                autocast_dtype=None) -> list[np.ndarray]:
    """Per example: (n_labels,) logits, or (T, n_labels) for tagging (eval mode restored after)."""
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    try:
        for batch in batches_in_order(ids, segments, None, batch_size, pad_id, tagging):
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                logits = model(batch.tokens.to(device), batch.mask.to(device),
                               batch.segments.to(device) if batch.segments is not None else None)
            logits = logits.float().cpu().numpy()
            lengths = batch.mask.sum(dim=1).tolist()
            out.extend(logits[i, :lengths[i]] if tagging else logits[i] for i in range(len(logits)))
    finally:
        model.train(was_training)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def validation_score(task: TaskTraining, logits: list[np.ndarray], encoded: Encoded) -> tuple[float, float, str]:
    """(loss, score, score name): macro-F1 of single-label classes, micro-F1 of multi-label ones, word
    accuracy of tags; the loss as the objective computes it."""
    if task.objective == "span":   # windows holding the answer whose start and end are both found
        gold = np.asarray(encoded.labels)
        picked = np.array([[row[:, 0].argmax(), row[:, 1].argmax()] for row in logits])
        loss = float(np.mean([_span_loss(row, g) for row, g in zip(logits, gold)]))
        # most windows hold no answer and point at [CLS]: counting them would reward never answering
        holds = gold[:, 0] > 0
        exact = (picked == gold).all(axis=1)
        return loss, float(exact[holds].mean()) if holds.any() else float(exact.mean()), "answer_span_exact"
    if task.tagging:
        gold = np.concatenate([t for t in encoded.labels])
        stacked = np.concatenate(logits)
        keep = gold != IGNORE
        loss = F.cross_entropy(torch.from_numpy(stacked[keep]), torch.from_numpy(np.maximum(gold[keep], 0))).item()
        return loss, float((stacked[keep].argmax(axis=1) == gold[keep]).mean()), "word_accuracy"
    stacked = np.stack(logits)
    if task.multi_label:
        labels = torch.from_numpy(np.asarray(encoded.labels, dtype=np.float32))
        loss = F.binary_cross_entropy_with_logits(torch.from_numpy(stacked), labels).item()
        predicted, gold = stacked > 0, labels.numpy() > 0.5
        tp = (predicted & gold).sum()
        return loss, float(2 * tp / max(predicted.sum() + gold.sum(), 1)), "micro_f1"
    gold = np.asarray(encoded.labels)
    if encoded.origin is not None:   # windows of long texts: score each text on its windows' mean logits
        firsts = np.unique([number for number, _ in encoded.origin], return_index=True)[1]
        stacked, gold = mean_by_origin(stacked, encoded.origin).astype(np.float32), gold[firsts]
    known = gold >= 0
    loss = F.cross_entropy(torch.from_numpy(stacked[known]), torch.from_numpy(gold[known])).item()
    confusion = confusion_matrix(gold[known], stacked[known].argmax(axis=1), task.n_labels)
    return loss, precision_recall_f1(confusion)["macro"]["f1"], "macro_f1"


def _span_loss(row: np.ndarray, gold: np.ndarray) -> float:
    logits = torch.from_numpy(row.T)                                             # (2, T)
    return F.cross_entropy(logits, torch.from_numpy(gold)).item()


class TaskValidation:
    """The valid split scored after each evaluation interval (on the main process; small sets)."""

    def __init__(self, task: TaskTraining, batch_size: int, device, autocast_dtype):
        self.task, self.batch_size, self.device, self.autocast_dtype = task, batch_size, device, autocast_dtype

    def evaluate(self, model) -> dict | None:
        valid = self.task.valid
        if valid is None or not valid.ids:
            return None
        logits = task_logits(model, valid.ids, valid.segments, self.batch_size, self.device, self.task.per_token,
                             self.task.pad_id, self.autocast_dtype)
        loss, score, name = validation_score(self.task, logits, valid)
        return {"val_loss": loss, "val_score": score, "score_name": name}
