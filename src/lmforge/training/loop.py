"""The one training loop: every model family, one process or many (torchrun), CPU or GPU."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lmforge.errors import InputError
from lmforge.evaluation.perplexity import NLLSums, nll_sums
from lmforge.runs import load_weights, save_weights
from lmforge.training import distributed
from lmforge.training.batches import WindowSampler, eval_windows
from lmforge.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from lmforge.training.metrics import MetricsLog, peak_flops
from lmforge.training.objectives import OBJECTIVES
from lmforge.training.optim import build_optimizers, lr_factor


@dataclass
class TrainConfig:
    batch_size: int = 16
    """Sequences per device per micro-step; effective batch = batch_size * grad_accum * world_size."""
    grad_accum: int = 1
    """Micro-steps whose gradients are summed before each optimizer step."""
    seq_len: int | None = None
    """Training context length in tokens; None means the model's max_seq_len."""
    max_steps: int = 2000
    """Stop after this many optimizer steps (also the length of the LR schedule)."""
    max_time: float | None = None
    """Stop after this many seconds of training; the LR schedule then follows the clock."""
    lr: float = 2e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of the peak."""
    warmup_steps: int = 100
    """Linear warmup steps."""
    schedule: str = "cosine"
    """LR schedule after warmup: cosine, wsd (warmup-stable-decay) or constant."""
    decay_fraction: float = 0.2
    """For wsd: the final fraction of training spent decaying the LR."""
    optimizer: str = "adamw"
    """adamw, or muon (Muon for the blocks' matrices, AdamW for embeddings, head and norms)."""
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
    eval_every: int = 200
    """Evaluate on the fixed validation slice every this many steps (and at the end)."""
    eval_windows: int = 64
    """Validation windows (of seq_len tokens) in the fixed slice."""
    checkpoint_every: int = 500
    """Save a resumable checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints to keep on disk."""
    log_every: int = 10
    """Write train loss to metrics.jsonl every this many steps."""
    max_nan_skips: int = 5
    """Stop after this many consecutive steps with a NaN/inf loss or gradient."""
    seed: int = 1337
    """Seed of the model init and of the data order."""
    device: str = "auto"
    """auto (cuda > mps > cpu), or a torch device name."""
    compile: bool = False
    """Compile the model with torch.compile (slower start, faster steps)."""
    threads: int | None = None
    """torch CPU threads per process; None means cores / processes on this machine."""

    def __post_init__(self) -> None:
        positive = ["batch_size", "grad_accum", "max_steps", "eval_every", "eval_windows",
                    "checkpoint_every", "keep_checkpoints", "log_every"]
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        checks = [
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.muon_lr > 0, f"--muon-lr must be positive, got {self.muon_lr}"),
            (0 <= self.min_lr_ratio <= 1, f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}"),
            (self.warmup_steps >= 0, f"--warmup-steps must be >= 0, got {self.warmup_steps}"),
            (self.schedule in ("cosine", "wsd", "constant"),
             f"--schedule must be cosine, wsd or constant, got {self.schedule!r}"),
            (0 < self.decay_fraction <= 1, f"--decay-fraction must be in (0, 1], got {self.decay_fraction}"),
            (self.optimizer in ("adamw", "muon"), f"--optimizer must be adamw or muon, got {self.optimizer!r}"),
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
    resume: bool = False
    objective: str = "causal_lm"


class TrainingDiverged(Exception):
    """Repeated NaN/inf losses; the last checkpoint on disk is still good."""


def _set_threads(config: TrainConfig, info: distributed.DistInfo) -> None:
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size))
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // local_world))


def _restore(setup: TrainSetup, model, optimizers) -> dict:
    """Load the newest checkpoint into model and optimizers; return its state.json."""
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
    return state


def _evaluate(setup: TrainSetup, model, seq_len: int, info, device, autocast_dtype) -> float | None:
    if setup.val_tokens is None:
        return None
    starts = eval_windows(setup.val_tokens, seq_len, setup.config.eval_windows)[info.rank::info.world_size]
    sums = nll_sums(model, setup.val_tokens, starts, seq_len, setup.config.batch_size, device,
                    None, 1.0, autocast_dtype)
    totals = distributed.all_reduce_sum(torch.tensor([sums.nll, float(sums.tokens)], dtype=torch.float64), info)
    return NLLSums(totals[0].item(), int(totals[1].item())).report()["val_loss"]


def train(setup: TrainSetup) -> dict:
    """Run (or resume) training; return a summary. Checkpoints make any interruption recoverable."""
    config = setup.config
    preferred = distributed.pick_device(config.device)
    info = distributed.init(preferred)
    device = distributed.local_device(preferred, info)
    _set_threads(config, info)
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None

    raw_model = setup.model.to(device)
    seq_len = config.seq_len or raw_model.config.max_seq_len
    if seq_len > raw_model.config.max_seq_len:
        raise InputError(f"--seq-len {seq_len} is longer than the model's max_seq_len "
                         f"{raw_model.config.max_seq_len}; lower it or raise --max-seq-len.")
    if setup.val_tokens is not None and len(setup.val_tokens) < seq_len + 2:
        if info.is_main:
            print(f"lmforge: warning: the val split has {len(setup.val_tokens)} tokens, fewer than one window of "
                  f"{seq_len + 1}; training without validation", file=sys.stderr)
        setup.val_tokens = None
    optimizers = build_optimizers(raw_model, name=config.optimizer, lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(config.beta1, config.beta2), muon_lr=config.muon_lr, device=device)
    state = _restore(setup, raw_model, optimizers) if setup.resume else {}
    step, train_time = state.get("step", 0), state.get("train_time", 0.0)
    time_budget = train_time + config.max_time if config.max_time else None
    model = torch.compile(raw_model) if config.compile else raw_model
    model = distributed.wrap(model, info, device)
    objective = OBJECTIVES[setup.objective]
    sampler = WindowSampler(setup.train_tokens, seq_len, config.batch_size, config.grad_accum,
                            info.rank, info.world_size, config.seed, str(setup.run_dir))
    metrics = MetricsLog(setup.run_dir, resume_step=step if setup.resume else None) if info.is_main else None
    tokens_per_step = config.batch_size * config.grad_accum * info.world_size * seq_len
    flops_per_step = raw_model.flops_per_token(seq_len) * tokens_per_step
    peak = peak_flops(device)  # of one process; the step does the work of all ranks
    peak = peak * info.world_size if peak else None
    # with a time budget the bar counts seconds (an honest ETA); otherwise it counts steps
    bar = tqdm(total=round(time_budget) if time_budget else config.max_steps,
               initial=round(train_time) if time_budget else step, unit="s" if time_budget else "step",
               disable=not info.is_main, file=sys.stderr, dynamic_ncols=True, desc="train", mininterval=1.0,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}{postfix}]" if time_budget
               else None)
    nan_streak, last_loss, val_loss, rate = 0, float("nan"), None, 0.0
    first_step, session_time = step, 0.0

    def checkpoint() -> None:
        if info.is_main:
            optim_state = {"optimizers": optimizers.state_dict(), "torch_rng": torch.get_rng_state()}
            if device.type == "cuda":
                optim_state["cuda_rng"] = torch.cuda.get_rng_state_all()
            save_checkpoint(setup.run_dir / "checkpoints", step, raw_model, optim_state,
                            {"step": step, "train_time": train_time, "seed": config.seed,
                             "tokens": step * tokens_per_step},
                            config.keep_checkpoints)
            save_weights(raw_model, setup.run_dir / "model.safetensors")
        distributed.barrier(info)

    def out_of_time() -> bool:
        return distributed.broadcast_flag(time_budget is not None and train_time >= time_budget, info)

    try:
        while step < config.max_steps and not out_of_time():
            started = time.perf_counter()
            progress = step / config.max_steps
            if time_budget:
                progress = max(progress, train_time / time_budget)
            optimizers.set_lr_factor(lr_factor(progress, step, warmup_steps=config.warmup_steps,
                                               schedule=config.schedule, min_lr_ratio=config.min_lr_ratio,
                                               decay_fraction=config.decay_fraction))
            loss_sum = torch.zeros((), device=device)
            for micro in range(config.grad_accum):
                tokens, targets = (t.to(device, non_blocking=True) for t in sampler.micro_batch(step, micro))
                with distributed.no_sync(model, enabled=micro < config.grad_accum - 1), \
                        torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    loss = objective(model, tokens, targets) / config.grad_accum
                loss.backward()
                loss_sum += loss.detach()
            loss_value = distributed.all_reduce_mean(loss_sum, info).item()
            grad_norm = (torch.nn.utils.clip_grad_norm_(raw_model.parameters(), config.grad_clip).item()
                         if config.grad_clip > 0 else 0.0)
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
            bar.update(min(elapsed, max(bar.total - bar.n, 0)) if time_budget else 1)
            postfix = {"step": step, "loss": f"{loss_value:.4f}", "tok/s": f"{rate:,.0f}",
                       "mfu": f"{100 * mfu:.1f}%" if mfu else "n/a"}
            bar.set_postfix(postfix, refresh=False)
            if metrics and nan_streak == 0 and (step % config.log_every == 0 or step == 1):
                metrics.write({"step": step, "loss": loss_value, "lr": optimizers.optimizers[0].param_groups[0]["lr"],
                               "grad_norm": grad_norm, "tokens": step * tokens_per_step,
                               "tokens_per_s": rate, "mfu": mfu, "train_time": train_time})
            finished = step >= config.max_steps or out_of_time()
            if step % config.eval_every == 0 or finished:
                val_loss = _evaluate(setup, raw_model, seq_len, info, device, autocast_dtype)
                if metrics and val_loss is not None:
                    metrics.write({"step": step, "val_loss": val_loss})
                    metrics.plot()
            if step % config.checkpoint_every == 0 or finished:
                checkpoint()
    finally:
        bar.close()
    if not (setup.run_dir / "model.safetensors").exists():
        checkpoint()
    distributed.shutdown(info)
    return {"steps": step, "tokens": step * tokens_per_step, "train_loss": last_loss, "val_loss": val_loss,
            "tokens_per_s": (step - first_step) * tokens_per_step / max(session_time, 1e-9),
            "mfu": (step - first_step) * flops_per_step / max(session_time, 1e-9) / peak if peak else None,
            "train_time": train_time, "world_size": info.world_size,
            "params": raw_model.num_params(), "flops_per_token": raw_model.flops_per_token(seq_len),
            "run_dir": str(setup.run_dir)}
