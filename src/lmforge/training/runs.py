"""Start or continue a training run from shards and configs: what `lmforge train`, `quickstart` and a
notebook share. Resolves a family's configs (defaults < preset < config file < flags), writes the run
directory (the typed run contract of runs.py) and hands the loop its setup."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from lmforge.config import build_config, to_toml
from lmforge.data.shards import ShardMeta, check_shards_match, read_meta
from lmforge.errors import InputError
from lmforge.models import MODELS, ModelSpec
from lmforge.runs import RUN_CONFIG, RunConfig, atomic_write_text, read_run_config, run_contract, write_run_dir
from lmforge.tokenization.tokenizer import FILENAME, Tokenizer
from lmforge.training.embedding_init import freeze_embedding, init_embeddings
from lmforge.training.loop import TrainConfig, TrainSetup, train
from lmforge.training.recipes import RECIPES


def family_spec(family: str, source: str) -> ModelSpec:
    if family not in MODELS:
        raise InputError(f"{source}: unknown model family {family!r}; this lmforge knows {', '.join(MODELS)}.")
    return MODELS[family]


def resolve_configs(family: str, preset: str, vocab_size: int, file_values: dict, model_flags: dict,
                    train_flags: dict):
    """(model config, train config) of a new run: defaults < preset < [model]/[train] of --config < flags."""
    spec = family_spec(family, "--model")
    if preset not in spec.presets:
        raise InputError(f"--preset {preset!r}: unknown for {family}; choose one of {', '.join(spec.presets)}.")
    model_config = build_config(spec.config_cls, {"vocab_size": vocab_size}, spec.presets[preset],
                                file_values.get("model", {}), model_flags, spec.fixed, source="model config")
    train_config = build_config(TrainConfig, RECIPES[family].train_presets.get(preset, {}),
                                file_values.get("train", {}), train_flags, source="train config")
    return model_config, train_config


def new_run(out: Path, family: str, preset: str, model_config, train_config: TrainConfig, meta: ShardMeta,
            sampler=None) -> dict:
    """Write the run directory of a run on the shards of `meta`, then train it."""
    out = Path(out)
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise InputError(f"{out}: already holds a run with checkpoints; pass --resume {out} to continue it "
                         "or choose another --out.")
    check_shards_match(meta, vocab_size=model_config.vocab_size, tokenizer_sha256=None, owner="--vocab-size")
    tokenizer = Tokenizer(meta.directory / FILENAME)
    RECIPES[family].check_tokenizer(tokenizer)  # before anything is written
    contract = RunConfig(family, preset, RECIPES[family].objective, str(Path(meta.directory).resolve()),
                         meta.tokenizer_sha256)
    write_run_dir(out, contract, model_config, train_config, meta.directory / FILENAME)
    return train_on_shards(out, family, model_config, train_config, meta, tokenizer, resume=False, sampler=sampler)


def resume(run_dir: Path, train_overrides: dict, data: Path | None = None, sampler=None) -> dict:
    """Continue `run_dir` from its newest checkpoint; training options may change, the model may not."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    contract = run_contract(config, run_dir)
    spec = family_spec(contract.family, str(run_dir / RUN_CONFIG))
    model_config = build_config(spec.config_cls, config.get("model", {}), spec.fixed,
                                source=str(run_dir / RUN_CONFIG))
    train_config = build_config(TrainConfig, config.get("train", {}), train_overrides,
                                source=str(run_dir / RUN_CONFIG))
    if train_overrides:  # record what the continuation runs with
        config["train"] = asdict(train_config)
        atomic_write_text(run_dir / RUN_CONFIG, to_toml(config))
    meta = read_meta(Path(data or contract.shards))
    tokenizer = Tokenizer(run_dir)
    check_shards_match(meta, vocab_size=model_config.vocab_size, tokenizer_sha256=tokenizer.sha256,
                       owner=f"run {run_dir}")
    return train_on_shards(run_dir, contract.family, model_config, train_config, meta, tokenizer, resume=True,
                           sampler=sampler)


def train_on_shards(run_dir: Path, family: str, model_config, train_config: TrainConfig, meta: ShardMeta,
                    tokenizer: Tokenizer, resume: bool, sampler=None) -> dict:
    """Build the model (seeded) and train it on the shards described by `meta`; no val split is fine.
    `sampler(model) -> str` gives the text --sample-every prints (the train command passes one)."""
    torch.manual_seed(train_config.seed)  # the model's initial weights depend on the seed alone
    val = meta.tokens("val") if meta.splits.get("val", {}).get("tokens", 0) > 0 else None
    model = MODELS[family].module_cls(model_config)
    if train_config.init_embeddings and not resume:   # a resumed run has the (trained) rows in its checkpoint
        report = init_embeddings(model, [tokenizer.hf.id_to_token(i) or "" for i in range(tokenizer.vocab_size)],
                                 Path(train_config.init_embeddings))
        if int(os.environ.get("RANK", "0")) == 0:
            print(report.describe(), file=sys.stderr)
    if train_config.freeze_embeddings:
        freeze_embedding(model)
    setup = TrainSetup(run_dir=Path(run_dir), model=model, config=train_config,
                       train_tokens=meta.tokens("train"), val_tokens=val, tokenizer=tokenizer, family=family,
                       resume=resume, sampler=sampler)
    return train(setup)
