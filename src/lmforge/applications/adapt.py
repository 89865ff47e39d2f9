"""Task-adaptive pretraining (Gururangan et al., 2020, "Don't Stop Pretraining"): before fine-tuning,
the backbone goes on with its own language-model objective (masked LM for encoders, causal LM for
decoders and recurrent models) on the task's own training texts, for a time budget, through the one
training loop. Labels are never read; the valid and test texts are never read either (a score on them
would otherwise have seen them). The pretraining's metrics and loss curve stay in `OUT/pretrain/`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from torch import nn

from lmforge.errors import InputError
from lmforge.models import MODELS
from lmforge.training.config import TrainConfig
from lmforge.training.loop import TrainSetup, train
from lmforge.training.recipes import lm_spec, recipe_for

MIN_TOKENS = 4096     # below this there is nothing to adapt to
VALID_SHARE = 0.05    # the end of the stream held out to watch the loss


def task_stream(texts: list[str], tokenizer) -> np.ndarray:
    """The texts as one token stream, each ended by EOS (the layout pretraining shards have)."""
    tokenizer.require("eos", purpose="task-adaptive pretraining")
    eos = tokenizer.eos_id
    ids = [token for encoded in tokenizer.encode_batch(texts) for token in (*encoded, eos)]
    dtype = np.uint16 if tokenizer.vocab_size < 2**16 else np.uint32
    return np.asarray(ids, dtype=dtype)


def adapt_backbone(backbone: nn.Module, family: str, preset: str, tokenizer, texts: list[str], out: Path,
                   seconds: float, seed: int, threads: int | None, device: str) -> dict:
    """Continue pretraining `backbone` in place on `texts` for `seconds`; the summary of that training."""
    if family not in MODELS:
        raise InputError(f"--pretrain-time: a {family} body has no language-model objective; pretrain a gpt, bert, "
                         "lstm, gru or rnn backbone (--init RUN, or --model with --tokenizer).")
    recipe = recipe_for(family)
    recipe.check_tokenizer(tokenizer)
    stream = task_stream(texts, tokenizer)
    if len(stream) < MIN_TOKENS:
        raise InputError(f"--pretrain-time: the training texts hold {len(stream)} tokens, too few to pretrain on "
                         f"(at least {MIN_TOKENS}); drop --pretrain-time.")
    cut = int(len(stream) * (1 - VALID_SHARE))
    seq_len = min(128, getattr(backbone.config, "max_seq_len", None) or 128)
    preset_values = recipe.train_presets.get(preset, next(iter(recipe.train_presets.values())))
    config = TrainConfig(**{**preset_values, "seq_len": seq_len, "max_time": seconds, "max_steps": None,
                            "eval_every": None, "checkpoint_every": 10**9, "checkpoint_minutes": None,
                            "seed": seed, "threads": threads, "device": device, "log_every": 10})
    folder = Path(out) / "pretrain"
    folder.mkdir(parents=True, exist_ok=True)
    options = recipe.options() if recipe.options else None
    spec = lm_spec(recipe, stream[:cut], stream[cut:], tokenizer, seq_len, options, "the training texts")
    print(f"finetune: pretraining the {family} backbone on the task's {len(stream):,} training tokens for "
          f"{seconds:.0f} s ({recipe.objective})", file=sys.stderr)
    summary = train(TrainSetup(folder, backbone.train(), config, spec, family, resume_command=None))
    for leftover in ("checkpoints", "model.safetensors"):   # the weights go on into the task model
        path = folder / leftover
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return {"objective": recipe.objective, "seconds": summary["train_time"], "steps": summary["steps"],
            "tokens": len(stream), "val_loss": summary["val_loss"]}
