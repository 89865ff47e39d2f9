"""The one training loop: every model family, one process or many (torchrun), CPU or GPU."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lmforge.errors import InputError
from lmforge.runs import load_weights, save_weights
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training import distributed
from lmforge.training.batches import eval_windows, to_device
from lmforge.training.checkpoint import latest_checkpoint, load_carried, load_checkpoint, save_checkpoint
from lmforge.training.control import Budget, StopRequest
from lmforge.training.finetune import TaskTraining
from lmforge.training.metrics import MetricsLog, peak_flops
from lmforge.training.objectives import OBJECTIVES, HiddenStates
from lmforge.training.optim import build_optimizers, clip_gradients
from lmforge.training.recipes import RECIPES, DataContext, Recipe
from lmforge.training.threads import default_threads

UNLIMITED_STEPS = 1_000_000_000


@dataclass
class TrainConfig:
    batch_size: int = 16
    """Sequences per device per micro-step; effective batch = batch_size * grad_accum * world_size."""
    grad_accum: int = 1
    """Micro-steps whose gradients are summed before each optimizer step."""
    seq_len: int | None = None
    """Training context length in tokens; None means the model's max_seq_len."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (also the length of the LR schedule); None means 2,000
    without --max-time and no step limit with it (the clock decides)."""
    max_time: float | None = None
    """Stop after this many seconds of training; the LR schedule then follows the clock."""
    lr: float = 2e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of the peak."""
    warmup_steps: int | None = None
    """Linear warmup steps; None means warmup_fraction of the budget (of --max-steps, or of the steps
    that --max-time is expected to allow, estimated from the speed so far)."""
    warmup_fraction: float = 0.03
    """Warmup as a fraction of the training budget, when --warmup-steps is not given."""
    schedule: str = "cosine"
    """LR schedule after warmup: cosine, wsd (warmup-stable-decay) or constant."""
    decay_fraction: float = 0.2
    """For wsd: the final fraction of training spent decaying the LR."""
    optimizer: str = "adamw"
    """adamw; muon (Muon for hidden linear matrices, AdamW for embeddings, heads and norms); or sgd
    (plain SGD, the classic recurrent-LM recipe with a large --lr and a tight --grad-clip)."""
    muon_lr: float = 0.02
    """Peak learning rate of the Muon parameters (with --optimizer muon)."""
    weight_decay: float = 0.1
    """Decoupled weight decay on matrices (not on norm gains)."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.95
    """AdamW beta2."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0 disables)."""
    eval_every: int | None = None
    """Evaluate on the fixed validation slice every this many steps (and at the end); None means ten
    times per run (every tenth of --max-steps, or of --max-time)."""
    eval_windows: int = 64
    """Validation windows (of seq_len tokens) in the fixed slice."""
    checkpoint_every: int = 500
    """Save a resumable checkpoint every this many steps (and at the end, and on Ctrl-C)."""
    checkpoint_minutes: float | None = 10.0
    """Also save one when this many minutes of training passed since the last (None: by steps only)."""
    keep_checkpoints: int = 2
    """Checkpoints to keep on disk."""
    log_every: int = 10
    """Write train loss to metrics.jsonl every this many steps."""
    log: str = "jsonl"
    """jsonl (metrics.jsonl and loss.png only), or tensorboard (also event files in RUN/tensorboard/;
    needs pip install 'lmforge[tensorboard]')."""
    max_nan_skips: int = 5
    """Stop after this many consecutive steps with a NaN/inf loss or gradient."""
    seed: int = 1337
    """Seed of the model init and of the data order."""
    device: str = "auto"
    """auto (cuda > mps > cpu), or a torch device name."""
    compile: bool = False
    """Compile the model with torch.compile (slower start, faster steps)."""
    threads: int | None = None
    """torch CPU threads per process; None means cores / processes on this machine, less the cores
    other processes keep busy at start-up (a busy laptop then costs its fair share, not 3x)."""
    sample_every: int | None = None
    """Print a short sample of the model's text every this many steps (decoders; None: never)."""
    mask_rate: float = 0.15
    """Masked LM (bert): fraction of tokens predicted (80% of them shown as [MASK], 10% random, 10% kept)."""
    whole_word_mask: bool = False
    """Masked LM (bert): mask whole words, all their WordPiece pieces together."""
    patience: int | None = None
    """Fine-tuning: stop after this many evaluations without a better validation score (None: never)."""
    layer_decay: float | None = None
    """Fine-tuning: layer-wise LR decay; each Transformer block gets this factor of the LR of the one above."""
    init_embeddings: str | None = None
    """Word vectors (an embed run, or a word2vec/GloVe file) that initialise the token embedding of a new
    run, tokens matched to words by string; the coverage is reported."""
    freeze_embeddings: bool = False
    """Keep the token embedding fixed during training (an output head tied to it too)."""

    def __post_init__(self) -> None:
        if self.max_steps is None:
            self.max_steps = UNLIMITED_STEPS if self.max_time else 2000
        positive = ["batch_size", "grad_accum", "max_steps", "eval_every", "eval_windows", "sample_every",
                    "checkpoint_every", "keep_checkpoints", "log_every"]
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        checks = [
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.muon_lr > 0, f"--muon-lr must be positive, got {self.muon_lr}"),
            (0 <= self.min_lr_ratio <= 1, f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}"),
            (self.warmup_steps is None or self.warmup_steps >= 0,
             f"--warmup-steps must be >= 0, got {self.warmup_steps}"),
            (0 <= self.warmup_fraction < 1, f"--warmup-fraction must be in [0, 1), got {self.warmup_fraction}"),
            (0 < self.mask_rate < 1, f"--mask-rate must be in (0, 1), got {self.mask_rate}"),
            (self.schedule in ("cosine", "wsd", "constant"),
             f"--schedule must be cosine, wsd or constant, got {self.schedule!r}"),
            (0 < self.decay_fraction <= 1, f"--decay-fraction must be in (0, 1], got {self.decay_fraction}"),
            (self.checkpoint_minutes is None or self.checkpoint_minutes > 0,
             f"--checkpoint-minutes must be positive, got {self.checkpoint_minutes}"),
            (self.log in ("jsonl", "tensorboard"), f"--log must be jsonl or tensorboard, got {self.log!r}"),
            (self.optimizer in ("adamw", "muon", "sgd"),
             f"--optimizer must be adamw, muon or sgd, got {self.optimizer!r}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "--beta1 and --beta2 must be in [0, 1)"),
            (self.grad_clip >= 0, f"--grad-clip must be >= 0, got {self.grad_clip}"),
            (self.seq_len is None or self.seq_len > 0, f"--seq-len must be positive, got {self.seq_len}"),
            (self.max_time is None or self.max_time > 0, f"--max-time must be positive, got {self.max_time}"),
            (self.threads is None or self.threads > 0, f"--threads must be positive, got {self.threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class TrainSetup:
    """Everything the loop needs, assembled by the train command (or a notebook)."""

    run_dir: Path
    model: torch.nn.Module
    config: TrainConfig
    train_tokens: np.ndarray
    val_tokens: np.ndarray | None
    tokenizer: Tokenizer
    family: str = "gpt"
    resume: bool = False
    sampler: Callable[[torch.nn.Module], str] | None = None
    """Text from the model for --sample-every (given by the caller: training does not generate)."""
    task: TaskTraining | None = None
    """Fine-tuning: the task's examples, sampler, objective and validation (None: language modelling)."""


class TrainingDiverged(Exception):
    """Repeated NaN/inf losses; the last checkpoint on disk is still good."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM: the step under way was finished and checkpointed."""


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


def _seq_len(config: TrainConfig, model) -> int:
    limit = getattr(model.config, "max_seq_len", None)
    seq_len = config.seq_len or limit
    if seq_len is None:
        raise InputError("--seq-len: this model family reads any length; give the training window length.")
    if limit is not None and seq_len > limit:
        raise InputError(f"--seq-len {seq_len} is longer than the model's max_seq_len {limit}; "
                         "lower it or raise --max-seq-len.")
    return seq_len


def _carried_tensors(sampler, info) -> dict[str, torch.Tensor]:
    """The states carried between windows, of all ranks, in global-batch row order."""
    carries = sampler.carried()
    if not carries or any(c.state is None for c in carries):
        return {}
    stacked = {f"state_{k}": torch.stack([c.state[k] for c in carries]) for k in range(len(carries[0].state))}
    # (grad_accum, n_layers, B, d) per rank -> rows of every rank, in the sampler's (micro, rank) order
    return {name: distributed.all_gather_cat(t, info, dim=2) for name, t in stacked.items()}


def _restore_carried(sampler, tensors: dict, info, device) -> None:
    rows = slice(info.rank * sampler.batch_size, (info.rank + 1) * sampler.batch_size)
    for micro, carry in enumerate(sampler.carried()):
        if tensors:
            carry.state = tuple(tensors[f"state_{k}"][micro][:, rows].to(device) for k in range(len(tensors)))


def _restore(setup: TrainSetup, model, optimizers, sampler, info, device) -> dict:
    """Load the newest checkpoint into model, optimizers and sampler; return its state.json."""
    path = latest_checkpoint(setup.run_dir / "checkpoints")
    if path is None:
        raise InputError(f"{setup.run_dir}: no checkpoint to resume from (checkpoints/ is empty); "
                         "start a new run without --resume.")
    load_weights(model, path / "model.safetensors")
    optim_state, state = load_checkpoint(path)
    optimizers.load_state_dict(optim_state["optimizers"])
    torch.set_rng_state(optim_state["torch_rng"])
    if torch.cuda.is_available() and "cuda_rng" in optim_state:
        torch.cuda.set_rng_state_all(optim_state["cuda_rng"])
    _restore_carried(sampler, load_carried(path), info, device)
    return state


class Validation:
    """The fixed validation slice, split into contiguous runs across ranks, scored by the family's recipe."""

    def __init__(self, setup: TrainSetup, recipe: Recipe, ctx: DataContext, info, device, autocast_dtype):
        self.tokens, self.recipe, self.ctx = setup.val_tokens, recipe, ctx
        self.info, self.device, self.autocast_dtype = info, device, autocast_dtype
        window = ctx.seq_len if recipe.objective != "masked_lm" else ctx.seq_len - 1
        if self.tokens is not None and len(self.tokens) < window + 2:
            if info.is_main:
                print(f"lmforge: warning: the val split has {len(self.tokens)} tokens, fewer than one window of "
                      f"{window + 1}; training without validation", file=sys.stderr)
            self.tokens = None
        if self.tokens is not None:
            starts = eval_windows(self.tokens, window, setup.config.eval_windows)
            self.starts = np.array_split(starts, info.world_size)[info.rank]

    def evaluate(self, model) -> dict | None:
        if self.tokens is None:
            return None
        sums = self.recipe.evaluate(model, self.tokens, self.starts, self.ctx, self.device, self.autocast_dtype,
                                    None, 1.0)
        totals = distributed.all_reduce_sum(torch.tensor(sums.values(), dtype=torch.float64), self.info)
        return {"val_loss": self.recipe.sums.of(totals.tolist()).report()["val_loss"]}


def _warn_about_budget(config: TrainConfig, info) -> None:
    if info.is_main and config.warmup_steps is not None and config.warmup_steps >= config.max_steps \
            and not config.max_time:
        print(f"lmforge: warning: --warmup-steps {config.warmup_steps} is not shorter than --max-steps "
              f"{config.max_steps}: the learning rate never reaches its peak", file=sys.stderr)


def _progress_bar(budget: Budget, config: TrainConfig, step: int, train_time: float, info) -> tqdm:
    """With a time budget the bar counts seconds (an honest ETA); otherwise it counts steps."""
    timed = budget.time_budget is not None
    return tqdm(total=round(budget.time_budget) if timed else config.max_steps,
                initial=round(train_time) if timed else step, unit="s" if timed else "step",
                disable=not info.is_main, file=sys.stderr, dynamic_ncols=True, desc="train", mininterval=1.0,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}{postfix}]" if timed else None)


def train(setup: TrainSetup) -> dict:
    """Run (or resume) training; return a summary. Checkpoints make any interruption recoverable."""
    config = setup.config
    preferred = distributed.pick_device(config.device)
    info = distributed.init(preferred)
    device = distributed.local_device(preferred, info)
    _set_threads(config, info)
    _warn_about_budget(config, info)
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None

    raw_model = setup.model.to(device)
    task = setup.task
    recipe = None if task else RECIPES[setup.family]   # a task run brings its own sampler and objective
    seq_len = _seq_len(config, raw_model)
    ctx = DataContext(seq_len, config.batch_size, config.grad_accum, config.seed, setup.tokenizer, config.mask_rate,
                      config.whole_word_mask, info.rank, info.world_size, str(setup.run_dir))
    sampler = task.sampler(ctx) if task else recipe.sampler(setup.train_tokens, ctx)
    validation = task.validation(config.batch_size, device, autocast_dtype) if task \
        else Validation(setup, recipe, ctx, info, device, autocast_dtype)
    optimizers = build_optimizers(raw_model, name=config.optimizer, lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(config.beta1, config.beta2), muon_lr=config.muon_lr, device=device,
                                  layer_decay=config.layer_decay)
    state = _restore(setup, raw_model, optimizers, sampler, info, device) if setup.resume else {}
    step, train_time = state.get("step", 0), state.get("train_time", 0.0)
    budget = Budget(config, train_time)
    net = HiddenStates(raw_model)
    net = distributed.wrap(torch.compile(net) if config.compile else net, info, device)
    objective = OBJECTIVES[task.objective if task else recipe.objective]
    metrics = MetricsLog(setup.run_dir, resume_step=step if setup.resume else None,
                         tensorboard=config.log == "tensorboard") if info.is_main else None
    tokens_per_step = config.batch_size * config.grad_accum * info.world_size * seq_len
    flops_per_token = raw_model.flops_per_token(seq_len) if hasattr(raw_model, "flops_per_token") else None
    peak = peak_flops(device) if flops_per_token else None  # of one process; the step does the work of all ranks
    peak = peak * info.world_size if peak else None
    flops_per_step = flops_per_token * tokens_per_step if flops_per_token else None
    bar = _progress_bar(budget, config, step, train_time, info)
    nan_streak, last_loss, val_loss = 0, float("nan"), None
    best = BestScore(setup.run_dir, config.patience, info)
    first_step, session_time = step, 0.0

    last_checkpoint_time = train_time

    def checkpoint() -> None:
        nonlocal last_checkpoint_time
        last_checkpoint_time = train_time
        carried = _carried_tensors(sampler, info)  # a collective: every rank takes part
        if info.is_main:
            optim_state = {"optimizers": optimizers.state_dict(), "torch_rng": torch.get_rng_state()}
            if device.type == "cuda":
                optim_state["cuda_rng"] = torch.cuda.get_rng_state_all()
            save_checkpoint(setup.run_dir / "checkpoints", step, raw_model, optim_state,
                            {"step": step, "train_time": train_time, "seed": config.seed,
                             "tokens": step * tokens_per_step}, config.keep_checkpoints, carried)
            save_weights(raw_model, setup.run_dir / "model.safetensors")
        distributed.barrier(info)

    def out_of_time() -> bool:
        return distributed.broadcast_flag(budget.out_of_time(train_time), info)

    def checkpoint_due(finished: bool) -> bool:
        minutes = config.checkpoint_minutes
        late = minutes is not None and train_time - last_checkpoint_time >= 60 * minutes
        return step % config.checkpoint_every == 0 or finished or distributed.broadcast_flag(late, info)

    stop, interrupted, stop_early = StopRequest(info), False, False
    try:
        while step < config.max_steps and not out_of_time():
            started = time.perf_counter()
            optimizers.set_lr_factor(budget.lr_factor(step, train_time))
            loss_sum = torch.zeros((), device=device)
            for micro in range(config.grad_accum):
                batch = to_device(sampler.micro_batch(step, micro), device)
                with distributed.no_sync(net, enabled=micro < config.grad_accum - 1), \
                        torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    loss = objective(net, batch) / config.grad_accum
                loss.backward()
                loss_sum += loss.detach()
            loss_value = distributed.all_reduce_mean(loss_sum, info).item()
            grad_norm = clip_gradients(raw_model.parameters(), config.grad_clip) if config.grad_clip > 0 else 0.0
            if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
                nan_streak += 1
                if info.is_main:
                    tqdm.write(f"lmforge: warning: step {step}: non-finite loss/gradient ({loss_value}); "
                               f"step skipped ({nan_streak}/{config.max_nan_skips})", file=sys.stderr)
                if nan_streak >= config.max_nan_skips:
                    last = latest_checkpoint(setup.run_dir / "checkpoints")
                    raise TrainingDiverged(f"training diverged: {nan_streak} consecutive non-finite steps at step "
                                           f"{step}; last good checkpoint: {last or 'none'}. Lower --lr "
                                           "or raise --warmup-steps, then --resume.")
            else:
                optimizers.step()
                nan_streak, last_loss = 0, loss_value
            optimizers.zero_grad()
            step += 1  # a skipped step skips its batch too, so a resume replays the same data
            elapsed = time.perf_counter() - started
            train_time += elapsed
            session_time += elapsed
            rate = tokens_per_step / elapsed
            mfu = flops_per_step / elapsed / peak if peak else None
            bar.update(min(elapsed, max(bar.total - bar.n, 0)) if budget.time_budget else 1)
            bar.set_postfix({"step": step, "loss": f"{loss_value:.4f}", "tok/s": f"{rate:,.0f}",
                             "mfu": f"{100 * mfu:.1f}%" if mfu else "n/a"}, refresh=False)
            if metrics and nan_streak == 0 and (step % config.log_every == 0 or step == 1):
                metrics.write({"step": step, "loss": loss_value, "lr": optimizers.optimizers[0].param_groups[0]["lr"],
                               "grad_norm": grad_norm, "tokens": step * tokens_per_step,
                               "tokens_per_s": rate, "mfu": mfu, "train_time": train_time})
            interrupted = stop.stopping()
            finished = step >= config.max_steps or out_of_time() or interrupted
            if budget.eval_due(step, train_time, finished):
                result = validation.evaluate(raw_model)
                val_loss = result["val_loss"] if result else None
                if metrics and result:
                    metrics.write({"step": step, **result, "tokens": step * tokens_per_step, "train_time": train_time})
                    metrics.plot()
                if result and "val_score" in result and best.update(result["val_score"], raw_model, step):
                    stop_early = finished = True
                    if info.is_main:
                        tqdm.write(f"early stop at step {step}: no better {result['score_name']} for "
                                   f"{config.patience} evaluations (best {best.score:.4f} at step {best.step})",
                                   file=sys.stderr)
            if setup.sampler and config.sample_every and step % config.sample_every == 0 and info.is_main:
                tqdm.write(f"sample at step {step}: {setup.sampler(raw_model)!r}", file=sys.stderr)
            if checkpoint_due(finished):
                checkpoint()
            if interrupted or stop_early:
                break
    finally:
        stop.restore()
        bar.close()
        if metrics:
            metrics.close()
    if not (setup.run_dir / "model.safetensors").exists():
        checkpoint()
    best.install()
    distributed.shutdown(info)
    if interrupted:
        raise TrainingInterrupted(f"interrupted at step {step}: checkpoint written to "
                                  f"{latest_checkpoint(setup.run_dir / 'checkpoints')}; continue with "
                                  f"`lmforge train --resume {setup.run_dir}`.")
    session_time = max(session_time, 1e-9)
    return {"family": setup.family, "steps": step, "tokens": step * tokens_per_step, "train_loss": last_loss,
            "val_loss": val_loss, "tokens_per_s": (step - first_step) * tokens_per_step / session_time,
            "mfu": (step - first_step) * flops_per_step / session_time / peak if peak else None,
            "train_time": train_time, "world_size": info.world_size, "params": raw_model.num_params(),
            "flops_per_token": flops_per_token, "run_dir": str(setup.run_dir),
            "best_val_score": best.score, "best_step": best.step}


class BestScore:
    """Fine-tuning keeps the weights of the best validation score (higher is better) and can stop when it
    has not improved for `patience` evaluations; at the end they become the run's model.safetensors."""

    def __init__(self, run_dir: Path, patience: int | None, info):
        self.path = Path(run_dir) / "best.safetensors"
        self.patience, self.info = patience, info
        self.score: float | None = None
        self.step: int | None = None
        self.stale = 0

    def update(self, score: float, model, step: int) -> bool:
        """Record a score; True when training should stop early."""
        if self.score is None or score > self.score:
            self.score, self.step, self.stale = score, step, 0
            if self.info.is_main:
                save_weights(model, self.path)
            return False
        self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def install(self) -> None:
        if self.info.is_main and self.path.exists():
            os.replace(self.path, self.path.with_name("model.safetensors"))
