"""Rebuild a trained model and its tokenizer from a run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from lmforge.config import build_config
from lmforge.errors import InputError
from lmforge.models import MODELS
from lmforge.runs import RUN_CONFIG, load_weights, read_run_config
from lmforge.tokenization.tokenizer import Tokenizer


def load_run(run_dir: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, Tokenizer, dict]:
    """(model in eval mode, tokenizer, resolved config) of `run_dir`."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    family = config.get("run", {}).get("model", "gpt")
    config_cls, model_cls, _ = MODELS[family]
    model_config = build_config(config_cls, config.get("model", {}), source=str(run_dir / RUN_CONFIG))
    model = model_cls(model_config)
    load_weights(model, run_dir / "model.safetensors")
    tokenizer = Tokenizer(run_dir)
    if tokenizer.vocab_size > model_config.vocab_size:
        raise InputError(f"{run_dir}/tokenizer.json: {tokenizer.vocab_size} tokens, more than the model's "
                         f"vocab_size {model_config.vocab_size}; the run directory was mixed up.")
    return model.to(device).eval(), tokenizer, config
