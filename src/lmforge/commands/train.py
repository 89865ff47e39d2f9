"""`lmforge train`: train a model on token shards; `--resume RUN` continues exactly where it stopped.

Example (CPU, ~3 minutes):
    lmforge train --data data/mycorpus/tokens/bpe4k --model gpt --preset tiny --out runs/tiny --max-time 180
    torchrun --nproc-per-node 2 -m lmforge train --data ... --out runs/ddp --max-steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from lmforge.config import add_config_args, build_config, read_toml, to_toml, values_from_args
from lmforge.data.shards import check_shards_match, read_meta
from lmforge.errors import InputError
from lmforge.models import MODELS
from lmforge.runs import RUN_CONFIG, atomic_write_text, read_run_config, write_run_dir
from lmforge.tokenization.tokenizer import FILENAME, Tokenizer
from lmforge.training.loop import TrainConfig, TrainSetup, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="token shard directory (output of `lmforge tokenize`)")
    parser.add_argument("--out", type=Path, help="run directory to create")
    parser.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in RUN from its last checkpoint")
    parser.add_argument("--model", default="gpt", choices=sorted(MODELS), help="model family (default: gpt)")
    parser.add_argument("--preset", default="tiny", help="model size preset (gpt: " +
                        ", ".join(MODELS["gpt"][2]) + ")")
    parser.add_argument("--config", type=Path, help="TOML file with [model] and [train] sections")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    config_cls = MODELS["gpt"][0]
    add_config_args(parser, config_cls)
    add_config_args(parser, TrainConfig)


def _model_layers(args, config_cls, presets: dict, file_values: dict) -> list[dict]:
    if args.preset not in presets:
        raise InputError(f"--preset {args.preset!r}: unknown; choose one of {', '.join(presets)}.")
    return [presets[args.preset], file_values.get("model", {}), values_from_args(args, config_cls)]


def start_run(args: argparse.Namespace) -> dict:
    """A new run: resolve configs, write config.toml and tokenizer.json into --out, then train."""
    if args.data is None or args.out is None:
        raise InputError("train: pass --data SHARDS and --out RUN for a new run, or --resume RUN.")
    config_cls, model_cls, presets = MODELS[args.model]
    meta = read_meta(args.data)
    file_values = read_toml(args.config) if args.config else {}
    layers = _model_layers(args, config_cls, presets, file_values)
    model_config = build_config(config_cls, {"vocab_size": meta.vocab_size}, *layers, source="model config")
    check_shards_match(meta, vocab_size=model_config.vocab_size, tokenizer_sha256=None, owner="--vocab-size")
    train_config = build_config(TrainConfig, file_values.get("train", {}), values_from_args(args, TrainConfig),
                                source="train config")
    out: Path = args.out
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise InputError(f"{out}: already holds a run with checkpoints; pass --resume {out} to continue it "
                         "or choose another --out.")
    write_run_dir_for(out, args.model, args.preset, model_config, train_config, meta)
    return train_on_shards(out, model_cls, model_config, train_config, meta, resume=False)


def write_run_dir_for(out: Path, family: str, preset: str, model_config, train_config, meta) -> None:
    """The run directory of a run trained on the shards described by `meta`."""
    write_run_dir(out, family=family, preset=preset, model_config=model_config, train_config=train_config,
                  shards=meta.directory, tokenizer_sha256=meta.tokenizer_sha256,
                  tokenizer_file=meta.directory / FILENAME)


def resume_run(args: argparse.Namespace) -> dict:
    run_dir: Path = args.resume
    config = read_run_config(run_dir)
    config_cls, model_cls, _ = MODELS[config.get("run", {}).get("model", "gpt")]
    if values_from_args(args, config_cls):
        raise InputError(f"{run_dir}: model options cannot change on --resume; start a new run instead.")
    model_config = build_config(config_cls, config["model"], source=str(run_dir / RUN_CONFIG))
    overrides = values_from_args(args, TrainConfig)
    train_config = build_config(TrainConfig, config["train"], overrides, source=str(run_dir / RUN_CONFIG))
    if overrides:  # record what the continuation runs with
        config["train"] = asdict(train_config)
        atomic_write_text(run_dir / RUN_CONFIG, to_toml(config))
    meta = read_meta(Path(args.data or config["data"]["shards"]))
    check_shards_match(meta, vocab_size=model_config.vocab_size, tokenizer_sha256=Tokenizer(run_dir).sha256,
                       owner=f"run {run_dir}")
    return train_on_shards(run_dir, model_cls, model_config, train_config, meta, resume=True)


def train_on_shards(run_dir: Path, model_cls, model_config, train_config: TrainConfig, meta,
                    resume: bool) -> dict:
    """Build the model (seeded) and train it on the shards described by `meta`; no val split is fine."""
    import torch

    torch.manual_seed(train_config.seed)  # the model's initial weights depend on the seed alone
    val = meta.tokens("val") if meta.splits.get("val", {}).get("tokens", 0) > 0 else None
    setup = TrainSetup(run_dir=run_dir, model=model_cls(model_config), config=train_config,
                       train_tokens=meta.tokens("train"), val_tokens=val, resume=resume)
    return train(setup)


def run(args: argparse.Namespace) -> int:
    summary = resume_run(args) if args.resume else start_run(args)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    mfu = f", MFU {100 * summary['mfu']:.1f}%" if summary.get("mfu") else ""
    print(f"train: {summary['params'] / 1e6:.2f}M params, {summary['flops_per_token'] / 1e6:.1f} MFLOP/token, "
          f"{summary['steps']} steps, {summary['tokens']:,} tokens, train loss {summary['train_loss']:.4f}, "
          f"val loss {summary['val_loss'] if summary['val_loss'] is None else round(summary['val_loss'], 4)}, "
          f"{summary['tokens_per_s']:,.0f} tokens/s{mfu} -> {summary['run_dir']}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 0
