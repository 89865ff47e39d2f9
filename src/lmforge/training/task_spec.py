"""The TrainSpec of a fine-tuning task: the task's examples in shuffled epochs, its objective, and a
validation that scores the task's own metric (the loop keeps the best weights by it and can stop early)."""

from __future__ import annotations

from dataclasses import dataclass

from lmforge.tasks.batches import task_logits
from lmforge.tasks.encode import Encoded
from lmforge.tasks.table import Task
from lmforge.training.objectives import OBJECTIVES
from lmforge.training.spec import LoopContext, TrainSpec
from lmforge.training.task_batches import TaskSampler


@dataclass
class TaskValidation:
    """The valid split scored after each evaluation interval (on the main process; small sets)."""

    task: Task
    valid: Encoded | None
    n_labels: int
    multi_label: bool
    pad_id: int
    loop: LoopContext

    def evaluate(self, model) -> dict | None:
        if self.valid is None or not self.valid.ids:
            return None
        logits = task_logits(model, self.valid.ids, self.valid.segments, self.loop.batch_size, self.loop.device,
                             self.task.per_token, self.pad_id, self.loop.autocast_dtype)
        loss, score, name = self.task.validation_score(logits, self.valid, self.n_labels, self.multi_label)
        return {"val_loss": loss, "val_score": score, "score_name": name}


def task_spec(task: Task, train: Encoded, valid: Encoded | None, n_labels: int, pad_id: int, max_len: int,
              multi_label: bool = False, patience: int | None = None, layer_decay: float | None = None) -> TrainSpec:
    def sampler(loop: LoopContext) -> TaskSampler:
        return TaskSampler(train.ids, train.segments, train.labels, loop.batch_size, loop.grad_accum, loop.info.rank,
                           loop.info.world_size, loop.seed, pad_id, task.objective == "tag")

    return TrainSpec(name=task.name, objective=OBJECTIVES[task.objective], sampler=sampler,
                     validation=lambda loop: TaskValidation(task, valid, n_labels, multi_label, pad_id, loop),
                     seq_len=max_len, patience=patience, layer_decay=layer_decay)
