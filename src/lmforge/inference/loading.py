"""Rebuild a trained model and its tokenizer from a run directory (any family)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lmforge.config import build_config
from lmforge.errors import InputError
from lmforge.models import MODELS, ModelSpec
from lmforge.runs import RUN_CONFIG, RunConfig, load_weights, read_run_config, run_contract
from lmforge.tokenization.tokenizer import Tokenizer


@dataclass
class LoadedRun:
    model: torch.nn.Module
    tokenizer: Tokenizer
    config: dict
    """The whole resolved config.toml."""
    run: RunConfig
    spec: ModelSpec


def load(run_dir: Path, device: torch.device | str = "cpu") -> LoadedRun:
    """The model (eval mode, on `device`), tokenizer and run contract of `run_dir`."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    contract = run_contract(config, run_dir)
    if contract.task:
        raise InputError(f"{run_dir}: a fine-tuned {contract.task} run (a backbone with a task head): use "
                         "`lmforge predict` or `lmforge eval` on it; to fine-tune, --init a pretrained run.")
    if contract.family not in MODELS:
        raise InputError(f"{run_dir / RUN_CONFIG}: unknown model family {contract.family!r}; "
                         f"this lmforge knows {', '.join(MODELS)}.")
    spec = MODELS[contract.family]
    model_config = build_config(spec.config_cls, config.get("model", {}), spec.fixed, source=str(run_dir / RUN_CONFIG))
    model = spec.module_cls(model_config)
    load_weights(model, run_dir / "model.safetensors")
    tokenizer = Tokenizer(run_dir)
    if tokenizer.vocab_size > model_config.vocab_size:
        raise InputError(f"{run_dir}/tokenizer.json: {tokenizer.vocab_size} tokens, more than the model's "
                         f"vocab_size {model_config.vocab_size}; the run directory was mixed up.")
    return LoadedRun(model.to(device).eval(), tokenizer, config, contract, spec)


def load_run(run_dir: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, Tokenizer, dict]:
    """(model in eval mode, tokenizer, resolved config) of `run_dir`."""
    loaded = load(run_dir, device)
    return loaded.model, loaded.tokenizer, loaded.config


def load_decoder(run_dir: Path, device: torch.device | str = "cpu") -> LoadedRun:
    """A run whose model generates; an encoder is refused with what to do instead."""
    loaded = load(run_dir, device)
    if loaded.spec.kind != "decoder":
        raise InputError(f"{run_dir}: a {loaded.run.family} run is an encoder: it fills in masked tokens but does "
                         "not generate text left to right. Generate with a gpt, lstm, gru or rnn run; use this one "
                         "with `lmforge eval` (masked-LM metrics) or as a backbone for fine-tuning.")
    return loaded
