"""Start or continue a language-model run from shards and configs: what `lmforge train`, `quickstart` and
a notebook share. Resolves a family's configs (defaults < preset < config file < flags), writes the run
directory (runs.write_run) and hands the loop the recipe's TrainSpec."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from lmforge.config import build_config
from lmforge.data.shards import ShardMeta, check_shards_match, read_meta
from lmforge.errors import InputError
from lmforge.models import MODELS, ModelSpec
from lmforge.runs import RunConfig, open_run, write_run
from lmforge.tokenization.tokenizer import FILENAME, Tokenizer
from lmforge.training.config import TrainConfig
from lmforge.training.embedding_init import freeze_embedding, init_embeddings
from lmforge.training.loop import TrainSetup, check_seq_len, train
from lmforge.training.recipes import Recipe, lm_spec, recipe_for


def family_spec(family: str, source: str) -> ModelSpec:
    if family not in MODELS:
        raise InputError(f"{source}: unknown model family {family!r}; this lmforge knows {', '.join(MODELS)}.")
    return MODELS[family]


def resolve_configs(family: str, preset: str, vocab_size: int, file_values: dict, model_flags: dict,
                    train_flags: dict, objective_flags: dict | None = None, objective: str | None = None):
    """(model config, train config, objective config or None) of a new run: defaults < preset <
    [model]/[train]/[<objective>] of --config < flags."""
    spec = family_spec(family, "--model")
    if preset not in spec.presets:
        raise InputError(f"--preset {preset!r}: unknown for {family}; choose one of {', '.join(spec.presets)}.")
    recipe = recipe_for(family, objective)
    model_config = build_config(spec.config_cls, {"vocab_size": vocab_size}, spec.presets[preset],
                                file_values.get("model", {}), model_flags, spec.fixed, source="model config")
    train_config = build_config(TrainConfig, recipe.train_presets.get(preset, {}), file_values.get("train", {}),
                                train_flags, source="train config")
    options = None
    if recipe.options is not None:
        options = build_config(recipe.options, file_values.get(recipe.objective, {}), objective_flags or {},
                               source=f"{recipe.objective} config")
    return model_config, train_config, options


def _sections(model_config, train_config: TrainConfig, recipe: Recipe, options) -> dict:
    sections = {"model": model_config, "train": train_config}
    if options is not None:
        sections[recipe.objective] = options
    return sections


def new_run(out: Path, family: str, preset: str, model_config, train_config: TrainConfig, meta: ShardMeta,
            sample_text=None, options=None, objective: str | None = None) -> dict:
    """Write the run directory of a run on the shards of `meta`, then train it."""
    out = Path(out)
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise InputError(f"{out}: already holds a run with checkpoints; pass --resume {out} to continue it "
                         "or choose another --out.")
    check_shards_match(meta, vocab_size=model_config.vocab_size, tokenizer_sha256=None, owner="--vocab-size")
    tokenizer = Tokenizer(meta.directory / FILENAME)
    recipe = recipe_for(family, objective)
    recipe.check_tokenizer(tokenizer)  # before anything is written
    contract = RunConfig(family, preset, recipe.objective, str(Path(meta.directory).resolve()), meta.tokenizer_sha256,
                         kind="lm")
    if int(os.environ.get("RANK", "0")) == 0:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(meta.directory / FILENAME, out / "tokenizer.json")
    write_run(out, contract, _sections(model_config, train_config, recipe, options))
    return train_on_shards(out, recipe, model_config, train_config, meta, tokenizer, False, sample_text, options)


def resume(run_dir: Path, train_overrides: dict, data: Path | None = None, sample_text=None) -> dict:
    """Continue `run_dir` from its newest checkpoint; training options may change, the model may not."""
    run = open_run(run_dir).require("train --resume", "lm")
    spec = family_spec(run.family, str(run.config_path))
    model_config = run.section("model", spec.config_cls, spec.fixed)
    train_config = run.section("train", TrainConfig, train_overrides)
    recipe = recipe_for(run.family, run.contract.objective)
    options = run.section(recipe.objective, recipe.options) if recipe.options else None
    if train_overrides:  # record what the continuation runs with
        write_run(run.path, run.contract, {**run.sections, "train": asdict(train_config)})
    meta = read_meta(Path(data or run.contract.shards))
    tokenizer = Tokenizer(run.path)
    check_shards_match(meta, vocab_size=model_config.vocab_size, tokenizer_sha256=tokenizer.sha256,
                       owner=f"run {run.path}")
    return train_on_shards(run.path, recipe, model_config, train_config, meta, tokenizer, True, sample_text, options)


def train_on_shards(run_dir: Path, recipe: Recipe, model_config, train_config: TrainConfig, meta: ShardMeta,
                    tokenizer: Tokenizer, resume: bool, sample_text=None, options=None) -> dict:
    """Build the model (seeded) and train it on the shards described by `meta`; no val split is fine.
    `sample_text(model) -> str` gives the text --sample-every prints (the train command passes one)."""
    torch.manual_seed(train_config.seed)  # the model's initial weights depend on the seed alone
    val = meta.tokens("val") if meta.splits.get("val", {}).get("tokens", 0) > 0 else None
    if val is None and int(os.environ.get("RANK", "0")) == 0 and not resume:
        print(f"lmforge: warning: {meta.directory} has no val split: training runs without validation (no val "
              "loss, no best checkpoint); prepare with --val-fraction, or --doc-split line for a one-sentence-a-"
              "line file", file=sys.stderr)
    model = MODELS[recipe.family].module_cls(model_config)
    if train_config.init_embeddings and not resume:   # a resumed run has the (trained) rows in its checkpoint
        report = init_embeddings(model, [tokenizer.hf.id_to_token(i) or "" for i in range(tokenizer.vocab_size)],
                                 Path(train_config.init_embeddings))
        if int(os.environ.get("RANK", "0")) == 0:
            print(report.describe(), file=sys.stderr)
    if train_config.freeze_embeddings:
        freeze_embedding(model)
    seq_len = check_seq_len(train_config, model)
    spec = lm_spec(recipe, meta.tokens("train"), val, tokenizer, seq_len, options, str(run_dir))
    return train(TrainSetup(Path(run_dir), model, train_config, spec, recipe.family, resume, sample_text))
