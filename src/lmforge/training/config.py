"""The training settings every run shares (batch, budget, optimizer, schedule, checkpoints, logging):
the [train] section of a run. What only one objective needs lives with it (`MaskedLMConfig` in
training/masked_lm.py; fine-tuning options in applications/finetune.py)."""

from __future__ import annotations

from dataclasses import dataclass

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
    """Evaluate on the validation sample (eval_windows spread over the split) every this many steps (and at
    the end); None means ten times per run (every tenth of --max-steps, or of --max-time)."""
    eval_windows: int = 64
    """Validation windows (of seq_len tokens) each eval during training reads, spread over the split
    (`lmforge eval` reads the whole split)."""
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
    parallel: str = "ddp"
    """Under torchrun: ddp (a replica of the model on every process) or fsdp (parameters, gradients and
    optimizer state sharded across the processes, for models that do not fit one)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass instead of keeping them (less memory,
    about a third more compute)."""
    threads: int | None = None
    """torch CPU threads per process; None means cores / processes on this machine, less the cores
    other processes keep busy at start-up (a busy laptop then costs its fair share, not 3x)."""
    sample_every: int | None = None
    """Print a short sample of the model's text every this many steps (decoders; None: never)."""
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
            (self.parallel in ("ddp", "fsdp"), f"--parallel must be ddp or fsdp, got {self.parallel!r}"),
            (self.parallel != "fsdp" or self.optimizer != "muon",
             "--optimizer muon orthogonalises whole matrices, which FSDP holds in shards; use adamw or sgd"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
