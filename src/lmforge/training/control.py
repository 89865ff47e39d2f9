"""When training warms up, evaluates and stops: the step/time budget, and Ctrl-C/SIGTERM requests."""

from __future__ import annotations

import signal
import sys
import threading

from tqdm import tqdm

from lmforge.training import distributed
from lmforge.training.config import TrainConfig
from lmforge.training.optim import lr_factor


class Budget:
    """Steps and/or seconds: progress for the LR schedule, automatic warm-up and evaluation cadence."""

    def __init__(self, config: TrainConfig, train_time: float):
        self.config = config
        self.time_budget = train_time + config.max_time if config.max_time else None
        self.next_eval_time = None
        if self.time_budget and config.eval_every is None:
            tenth = config.max_time / 10
            self.next_eval_time = train_time + tenth

    def progress(self, step: int, train_time: float) -> float:
        progress = step / self.config.max_steps
        return max(progress, train_time / self.time_budget) if self.time_budget else progress

    def warmup_steps(self, step: int, train_time: float) -> int:
        c = self.config
        if c.warmup_steps is not None:
            return c.warmup_steps
        if c.warmup_fraction == 0:
            return 0
        expected = c.max_steps
        if self.time_budget:
            if step == 0:  # no speed measured yet: the first step runs at 1% of the peak LR
                return 100
            expected = min(expected, round(step / train_time * self.time_budget))  # steps the clock allows
        return max(1, round(c.warmup_fraction * expected))

    def lr_factor(self, step: int, train_time: float) -> float:
        c = self.config
        return lr_factor(self.progress(step, train_time), step, warmup_steps=self.warmup_steps(step, train_time),
                         schedule=c.schedule, min_lr_ratio=c.min_lr_ratio, decay_fraction=c.decay_fraction)

    def eval_due(self, step: int, train_time: float, finished: bool) -> bool:
        if finished:
            return True
        if self.config.eval_every is not None:
            return step % self.config.eval_every == 0
        if self.next_eval_time is not None:
            if train_time < self.next_eval_time:
                return False
            self.next_eval_time += self.config.max_time / 10
            return True
        return step % max(1, self.config.max_steps // 10) == 0

    def out_of_time(self, train_time: float) -> bool:
        return self.time_budget is not None and train_time >= self.time_budget


class StopRequest:
    """SIGINT/SIGTERM during training: finish the step under way, write a checkpoint, stop. A second
    signal aborts at once (the last checkpoint stays intact)."""

    def __init__(self, info):
        self.info, self.requested, self.previous = info, False, {}
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.info.is_main:
            tqdm.write("lmforge: stopping after this step and writing a checkpoint (again to abort at once)",
                       file=sys.stderr)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def stopping(self) -> bool:
        return distributed.broadcast_flag(self.requested, self.info)
