"""The one training loop: every model family and task (through a TrainSpec), one process or many
(torchrun), CPU or GPU. It owns the step (micro-batches, gradient accumulation, clipping, NaN skips),
the clock and schedule, logging, evaluation, checkpoints and resume."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from lmforge.artifacts import atomic_write_text, load_weights, save_weights
from lmforge.devices import autocast, autocast_dtype, pick_device
from lmforge.errors import InputError, TrainingDiverged, TrainingInterrupted
from lmforge.runs import INTERRUPTED
from lmforge.training import distributed
from lmforge.training.batches import to_device
from lmforge.training.checkpoint import (
    latest_checkpoint,
    load_carried,
    load_checkpoint,
    save_checkpoint,
    stage_checkpoint,
    staging_folder,
)
from lmforge.training.config import TrainConfig
from lmforge.training.control import Budget, StopRequest
from lmforge.training.metrics import MetricsLog, peak_flops
from lmforge.training.objectives import TrainingView
from lmforge.training.optim import build_optimizers, clip_gradients
from lmforge.training.spec import LoopContext, TrainSpec
from lmforge.training.threads import default_threads


@dataclass
class TrainSetup:
    """Everything the loop needs, assembled by a command (or a notebook)."""

    run_dir: Path
    model: torch.nn.Module
    config: TrainConfig
    spec: TrainSpec
    family: str = "gpt"
    resume: bool = False
    sample_text: Callable[[torch.nn.Module], str] | None = None
    """Text from the model for --sample-every (given by the caller: training does not generate)."""
    resume_command: str | None = "lmforge train --resume"
    """What an interrupted run is continued with (the run directory follows); None: it cannot be, and is
    run again with --overwrite."""


def _set_threads(config: TrainConfig, info: distributed.DistInfo) -> None:
    if config.threads:
        torch.set_num_threads(config.threads)
        return
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size))
    threads, busy = default_threads(local_world)
    if threads < (os.cpu_count() or 1) // local_world:
        print(f"lmforge: warning: other processes keep ~{busy:.1f} cores busy; training on {threads} thread(s), "
              "which is faster than competing for them (pass --threads to choose)", file=sys.stderr)
    torch.set_num_threads(threads)


def _warn_about_budget(config: TrainConfig, info) -> None:
    if info.is_main and config.warmup_steps is not None and config.warmup_steps >= config.max_steps \
            and not config.max_time:
        print(f"lmforge: warning: --warmup-steps {config.warmup_steps} is not shorter than --max-steps "
              f"{config.max_steps}: the learning rate never reaches its peak", file=sys.stderr)


def _check_parallel(config: TrainConfig, info, resume: bool) -> None:
    """--parallel fsdp shards across torchrun's processes: alone it has nothing to shard across (a sharded
    run may still be resumed on one process, which reads its checkpoint whole)."""
    if config.parallel == "fsdp" and info.world_size == 1 and not resume:
        raise InputError("--parallel fsdp shards the model across processes; launch it with torchrun, e.g. "
                         "`torchrun --nproc-per-node 2 -m lmforge train ... --parallel fsdp`.")


def check_seq_len(config: TrainConfig, model) -> int:
    """The training window: --seq-len, or the model's max_seq_len (a recurrent model needs --seq-len)."""
    limit = getattr(model.config, "max_seq_len", None)
    seq_len = config.seq_len or limit
    if seq_len is None:
        raise InputError("--seq-len: this model family reads any length; give the training window length.")
    if limit is not None and seq_len > limit:
        raise InputError(f"--seq-len {seq_len} is longer than the model's max_seq_len {limit}; "
                         "lower it or raise --max-seq-len.")
    return seq_len


class BestScore:
    """Fine-tuning keeps the weights of the best validation score (higher is better) and can stop when it
    has not improved for `patience` evaluations; at the end they become the run's model.safetensors."""

    def __init__(self, run_dir: Path, patience: int | None, info):
        self.path = Path(run_dir) / "best.safetensors"
        self.patience, self.info = patience, info
        self.score: float | None = None
        self.step: int | None = None
        self.stale = 0

    def update(self, score: float, weights: Callable, step: int) -> bool:
        """Record a score; True when training should stop early. `weights()` gives what to save (every rank
        calls it: gathering sharded weights is a collective)."""
        if self.score is None or score > self.score:
            self.score, self.step, self.stale = score, step, 0
            best = weights()
            if self.info.is_main:
                save_weights(best, self.path)
            return False
        self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def install(self, keep: bool = False) -> None:
        """The best weights become model.safetensors; `keep` (an interrupted run) leaves a copy for the
        resumed run to compare against."""
        if self.info.is_main and self.path.exists():
            if keep:
                shutil.copyfile(self.path, self.path.with_name(".model.safetensors.tmp"))
                os.replace(self.path.with_name(".model.safetensors.tmp"), self.path.with_name("model.safetensors"))
            else:
                os.replace(self.path, self.path.with_name("model.safetensors"))

    def state(self) -> dict:
        return {} if self.score is None else {"best": {"score": self.score, "step": self.step, "stale": self.stale}}

    def restore(self, state: dict) -> None:
        best = state.get("best")
        if best and self.path.exists():   # the weights of that score are still in best.safetensors
            self.score, self.step, self.stale = best["score"], best["step"], best["stale"]


@dataclass
class StepResult:
    loss: float
    grad_norm: float
    tokens: int          # real tokens of the global batch
    seconds: float


class Session:
    """One training session: the model on its device, the spec's sampler and validation, optimizers, the
    budget and the counters that a checkpoint keeps."""

    def __init__(self, setup: TrainSetup):
        self.setup, self.config, self.spec = setup, setup.config, setup.spec
        preferred = pick_device(self.config.device)
        self.info = distributed.init(preferred)
        self.device = distributed.local_device(preferred, self.info)
        _set_threads(self.config, self.info)
        _warn_about_budget(self.config, self.info)
        self.autocast_dtype = autocast_dtype(self.device)
        self.model = setup.model.to(self.device)
        loop = LoopContext(self.device, self.autocast_dtype, self.info, self.config.batch_size, self.config.grad_accum,
                           self.config.seed, self.config.eval_windows, setup.run_dir)
        self.sampler, self.validation = self.spec.sampler(loop), self.spec.validation(loop)
        c = self.config
        _check_parallel(c, self.info, setup.resume)
        self.sharded = c.parallel == "fsdp" and self.info.world_size > 1
        view = TrainingView(self.model, self.spec.objective, compile=c.compile)
        if self.sharded:   # FSDP replaces the parameters with their shards: the optimizers take those
            self.net = distributed.wrap(view, self.info, self.device, "fsdp", c.activation_checkpointing)
        self.optimizers = build_optimizers(self.model, name=c.optimizer, lr=c.lr, weight_decay=c.weight_decay,
                                           betas=(c.beta1, c.beta2), muon_lr=c.muon_lr, device=self.device,
                                           layer_decay=self.spec.layer_decay)
        state = self._restore() if setup.resume else {}
        self.step, self.train_time, self.tokens = state.get("step", 0), state.get("train_time", 0.0), \
            state.get("tokens", 0)
        self.first_step, self.session_time, self.session_tokens = self.step, 0.0, 0
        self.last_checkpoint_time = self.train_time
        self.budget = Budget(c, self.train_time)
        if not self.sharded:   # DDP copies rank 0's restored weights to every rank
            self.net = distributed.wrap(view, self.info, self.device, "ddp", c.activation_checkpointing)
        self.flops_per_token = self.model.flops_per_token(self.spec.seq_len) \
            if hasattr(self.model, "flops_per_token") else None
        peak = peak_flops(self.device) if self.flops_per_token else None   # of one process
        self.peak = peak * self.info.world_size if peak else None           # the step does the work of all ranks
        self.metrics = MetricsLog(setup.run_dir, resume_step=self.step if setup.resume else None,
                                  tensorboard=c.log == "tensorboard") if self.info.is_main else None
        self.best = BestScore(setup.run_dir, self.spec.patience, self.info)
        self.best.restore(state)
        self.nan_streak, self.last_loss, self.val_loss = 0, float("nan"), None

    def _restore(self) -> dict:
        """Load the newest checkpoint into model, optimizers and sampler; return its state.json."""
        path = latest_checkpoint(self.setup.run_dir / "checkpoints")
        if path is None:
            raise InputError(f"{self.setup.run_dir}: no checkpoint to resume from (checkpoints/ is empty); "
                             "start a new run without --resume.")
        optim_state, state = load_checkpoint(path)
        if (path / distributed.SHARDED).exists():   # written by FSDP on any number of ranks
            try:
                distributed.load_sharded(path / distributed.SHARDED, self.model, self.optimizers.optimizers)
            except distributed.checkpoint_errors() as error:
                first = distributed.checkpoint_error_line(error)
                raise InputError(f"{path}: the sharded checkpoint does not fit this run's model ({first}); resume "
                                 "with the model settings it was trained with.") from None
        elif self.sharded:
            raise InputError(f"{path}: this checkpoint was written without FSDP (by DDP or one process), so its "
                             "optimizer state is not in shards; resume it with --parallel ddp.")
        else:
            load_weights(self.model, path / "model.safetensors")
            self.optimizers.load_state_dict(optim_state["optimizers"])
        torch.set_rng_state(optim_state["torch_rng"])
        if torch.cuda.is_available() and "cuda_rng" in optim_state:
            torch.cuda.set_rng_state_all(optim_state["cuda_rng"])
        self.sampler.restore(load_carried(path), self.info, self.device)
        return state

    # --- one optimizer step ----------------------------------------------------------------------
    def forward_backward(self) -> tuple[float, int]:
        """Every micro-batch of this step: gradients summed; (mean loss, real tokens) over all ranks."""
        c = self.config
        loss_sum, tokens = torch.zeros((), device=self.device), 0
        for micro in range(c.grad_accum):
            batch = to_device(self.sampler.micro_batch(self.step, micro), self.device)
            with distributed.no_sync(self.net, enabled=micro < c.grad_accum - 1), \
                    autocast(self.device, self.autocast_dtype):
                loss = self.net(batch) / c.grad_accum
            loss.backward()
            loss_sum += loss.detach()
            tokens += batch.n_tokens
        totals = torch.stack([loss_sum.double(), torch.tensor(float(tokens), dtype=torch.float64,
                                                              device=self.device)])
        totals = distributed.all_reduce_sum(totals, self.info)   # one collective for both
        return (totals[0] / self.info.world_size).item(), int(totals[1].item())

    def optimizer_step(self) -> StepResult:
        started = time.perf_counter()
        self.optimizers.set_lr_factor(self.budget.lr_factor(self.step, self.train_time))
        loss, tokens = self.forward_backward()
        c = self.config
        grad_norm = clip_gradients(self.model.parameters(), c.grad_clip) if c.grad_clip > 0 else 0.0
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.optimizers.step()
            self.nan_streak, self.last_loss = 0, loss
        else:
            self._skip(loss)
        self.optimizers.zero_grad()
        self.step += 1   # a skipped step skips its batch too, so a resume replays the same data
        elapsed = time.perf_counter() - started
        self.train_time += elapsed
        self.session_time += elapsed
        self.tokens += tokens
        self.session_tokens += tokens
        return StepResult(loss, grad_norm, tokens, elapsed)

    def _skip(self, loss: float) -> None:
        self.nan_streak += 1
        c = self.config
        if self.info.is_main:
            tqdm.write(f"lmforge: warning: step {self.step}: non-finite loss/gradient ({loss}); "
                       f"step skipped ({self.nan_streak}/{c.max_nan_skips})", file=sys.stderr)
        if self.nan_streak >= c.max_nan_skips:
            last = latest_checkpoint(self.setup.run_dir / "checkpoints")
            raise TrainingDiverged(f"training diverged: {self.nan_streak} consecutive non-finite steps at step "
                                   f"{self.step}; last good checkpoint: {last or 'none'}. Lower --lr "
                                   "or raise --warmup-steps, then --resume.")

    # --- around the step -------------------------------------------------------------------------
    def mfu(self, flops_tokens: int, seconds: float) -> float | None:
        return self.flops_per_token * flops_tokens / seconds / self.peak if self.peak else None

    def log(self, result: StepResult) -> dict:
        """The progress-bar fields of this step; the metrics.jsonl record every --log-every steps."""
        rate, mfu = result.tokens / result.seconds, self.mfu(result.tokens, result.seconds)
        if self.metrics and self.nan_streak == 0 and (self.step % self.config.log_every == 0 or self.step == 1):
            self.metrics.write({"step": self.step, "loss": result.loss,
                                "lr": self.optimizers.optimizers[0].param_groups[0]["lr"],
                                "grad_norm": result.grad_norm, "tokens": self.tokens, "tokens_per_s": rate,
                                "mfu": mfu, "train_time": self.train_time})
        return {"step": self.step, "loss": f"{result.loss:.4f}", "tok/s": f"{rate:,.0f}",
                "mfu": f"{100 * mfu:.1f}%" if mfu else "n/a"}

    def evaluate(self) -> bool:
        """Validate; record it; True when the best score has stopped improving (early stop)."""
        with distributed.gathered(self.net):
            result = self.validation.evaluate(self.model)
        self.val_loss = result["val_loss"] if result else None
        if self.metrics and result:
            self.metrics.write({"step": self.step, **result, "tokens": self.tokens, "train_time": self.train_time})
            self.metrics.plot()
        if not (result and "val_score" in result and self.best.update(result["val_score"], self.weights, self.step)):
            return False
        if self.info.is_main:
            tqdm.write(f"early stop at step {self.step}: no better {result['score_name']} for {self.spec.patience} "
                       f"evaluations (best {self.best.score:.4f} at step {self.best.step})", file=sys.stderr)
        return True

    def out_of_time(self) -> bool:
        return distributed.broadcast_flag(self.budget.out_of_time(self.train_time), self.info)

    def checkpoint_due(self, finished: bool) -> bool:
        minutes = self.config.checkpoint_minutes
        late = minutes is not None and self.train_time - self.last_checkpoint_time >= 60 * minutes
        return self.step % self.config.checkpoint_every == 0 or finished or distributed.broadcast_flag(late, self.info)

    def weights(self):
        """The model to save (a module), or its whole state gathered from the shards (a collective)."""
        return distributed.full_state_dict(self.model, sharded=True) if self.sharded else self.model

    def checkpoint(self) -> None:
        self.last_checkpoint_time = self.train_time
        carried = self.sampler.checkpoint_tensors(self.info)  # a collective: every rank takes part
        directory = self.setup.run_dir / "checkpoints"
        weights, staged = self.weights(), None
        # an FSDP run keeps sharded checkpoints even when resumed on one process, so it can go back to N
        if self.config.parallel == "fsdp":   # every rank writes its shards into the staging folder rank 0 made
            if self.info.is_main:
                stage_checkpoint(directory, self.step)
            distributed.barrier(self.info)
            staged = staging_folder(directory, self.step)
            distributed.save_sharded(staged / distributed.SHARDED, self.model, self.optimizers.optimizers)
            distributed.barrier(self.info)
        if self.info.is_main:
            optim_state = {"torch_rng": torch.get_rng_state()}
            if staged is None:
                optim_state["optimizers"] = self.optimizers.state_dict()
            if self.device.type == "cuda":
                optim_state["cuda_rng"] = torch.cuda.get_rng_state_all()
            save_checkpoint(directory, self.step, weights, optim_state,
                            {"step": self.step, "train_time": self.train_time, "seed": self.config.seed,
                             "tokens": self.tokens, **self.best.state()}, self.config.keep_checkpoints, carried,
                            staged=staged is not None)
            save_weights(weights, self.setup.run_dir / "model.safetensors")
        distributed.barrier(self.info)

    def summary(self) -> dict:
        seconds = max(self.session_time, 1e-9)
        return {"family": self.setup.family, "steps": self.step, "tokens": self.tokens, "train_loss": self.last_loss,
                "val_loss": self.val_loss, "tokens_per_s": self.session_tokens / seconds,
                "mfu": self.mfu(self.session_tokens, seconds), "train_time": self.train_time,
                "world_size": self.info.world_size, "params": self.model.num_params(),
                "flops_per_token": self.flops_per_token, "run_dir": str(self.setup.run_dir),
                "best_val_score": self.best.score, "best_step": self.best.step, "parallel": self.config.parallel
                if self.info.world_size > 1 else None,
                "state_bytes_per_rank": distributed.local_bytes(self.model, self.optimizers.optimizers)}


def _progress_bar(session: Session) -> tqdm:
    """With a time budget the bar counts seconds (an honest ETA); otherwise it counts steps."""
    budget, config = session.budget, session.config
    timed = budget.time_budget is not None
    return tqdm(total=round(budget.time_budget) if timed else config.max_steps,
                initial=round(session.train_time) if timed else session.step, unit="s" if timed else "step",
                disable=not session.info.is_main, file=sys.stderr, dynamic_ncols=True, desc="train", mininterval=1.0,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}{postfix}]" if timed else None)


def _run_steps(session: Session, bar: tqdm, stop: StopRequest) -> bool:
    """Steps until the budget ends, an interrupt or an early stop; True when interrupted."""
    config, setup = session.config, session.setup
    while session.step < config.max_steps and not session.out_of_time():
        result = session.optimizer_step()
        bar.update(min(result.seconds, max(bar.total - bar.n, 0)) if session.budget.time_budget else 1)
        bar.set_postfix(session.log(result), refresh=False)
        interrupted = stop.stopping()
        finished = session.step >= config.max_steps or session.out_of_time() or interrupted
        early = session.budget.eval_due(session.step, session.train_time, finished) and session.evaluate()
        if setup.sample_text and config.sample_every and session.step % config.sample_every == 0 \
                and session.info.is_main and not session.sharded:
            tqdm.write(f"sample at step {session.step}: {setup.sample_text(session.model)!r}", file=sys.stderr)
        if session.checkpoint_due(finished or early):
            session.checkpoint()
        if interrupted or early:
            return interrupted
    return False


def train(setup: TrainSetup) -> dict:
    """Run (or resume) training; return a summary. Checkpoints make any interruption recoverable."""
    session = Session(setup)
    stop, bar = StopRequest(session.info), _progress_bar(session)
    try:
        interrupted = _run_steps(session, bar, stop)
    finally:
        stop.restore()
        bar.close()
        if session.metrics:
            session.metrics.close()
    if not (setup.run_dir / "model.safetensors").exists():
        session.checkpoint()
    session.best.install(keep=interrupted)
    distributed.shutdown(session.info)
    if interrupted:
        command = f"{setup.resume_command} {setup.run_dir}" if setup.resume_command else None
        continuation = command or "its command again with --overwrite (this kind of run does not resume)"
        if session.info.is_main:
            mark_interrupted(setup.run_dir, session.step, continuation)
        raise TrainingInterrupted(f"interrupted at step {session.step}: checkpoint written to "
                                  f"{latest_checkpoint(setup.run_dir / 'checkpoints')}; continue with "
                                  + (f"`{command}`." if command else f"{continuation}."))
    if session.info.is_main:
        (setup.run_dir / INTERRUPTED).unlink(missing_ok=True)
    return session.summary()


def mark_interrupted(run_dir: Path, step: int, continuation: str) -> None:
    atomic_write_text(Path(run_dir) / INTERRUPTED, json.dumps({"step": step, "resume": continuation}) + "\n")
