"""`lmforge train`: train a model of any family on token shards (translation models: on sentence pairs);
`--resume RUN` continues exactly.

`--model` chooses the family (gpt, lstm, gru, rnn, bert; transformer, seq2seq-gru, seq2seq-lstm); `--help`
then shows that family's fields.
Example (CPU, ~2 minutes each; translation 10 minutes):
    lmforge train --data data/mycorpus/tokens/char --model lstm --preset tiny --out runs/lstm --max-time 120
    lmforge train --data data/mycorpus/tokens/bpe4k --model gpt --preset tiny --out runs/tiny --max-time 120
    lmforge train --data data/en-de --tokenizer tokenizers/en-de --model transformer --out runs/tfm --max-time 600
    torchrun --nproc-per-node 2 -m lmforge train --data ... --out runs/ddp --max-steps 200
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from lmforge.config import add_config_args, read_toml, values_from_args
from lmforge.data.shards import read_meta
from lmforge.errors import InputError
from lmforge.models import ALL_MODELS, MODELS, TASK_MODELS
from lmforge.runs import open_run
from lmforge.training.config import TrainConfig
from lmforge.training.recipes import RECIPES, recipe_for
from lmforge.training.runs import new_run, resolve_configs, resume
from lmforge.training.seq2seq_runs import new_seq2seq_run, pair_shards_for, resolve_seq2seq_configs, resume_seq2seq

FOREIGN = "foreign__"


def chosen_family(argv) -> str:
    """--model from the command line; on --resume, the family recorded in the run (if readable)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", default="gpt")
    pre.add_argument("--resume", type=Path)
    known, _ = pre.parse_known_args(list(argv or []))
    if known.resume is not None:
        try:
            return open_run(known.resume).family
        except InputError:
            return known.model  # the command itself reports the bad run directory
    return known.model


def _options_cls(family: str) -> type | None:
    """The config class of the family's default objective's own options (masked LM for bert), if any."""
    return recipe_for(family).options if family in MODELS else None


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    family = chosen_family(argv)
    parser.add_argument("--data", type=Path, help="token shard directory (output of `lmforge tokenize`); translation "
                        "models: a parallel dataset (`prepare --pairs`) with --tokenizer, or its pair shards")
    parser.add_argument("--out", type=Path, help="run directory to create")
    parser.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in RUN from its last checkpoint")
    parser.add_argument("--model", default="gpt", choices=sorted(ALL_MODELS),
                        help="model family: " + "; ".join(f"{n}: {s.summary}" for n, s in MODELS.items()))
    presets = MODELS[family].presets if family in MODELS else {}
    parser.add_argument("--preset", default="tiny", help=f"size preset ({family}: {', '.join(presets)})")
    parser.add_argument("--config", type=Path, help="TOML file with [model] and [train] sections")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    if family in MODELS and MODELS[family].kind == "seq2seq":
        parser.add_argument("--tokenizer", type=Path, help="tokenizer of both sides (or of the source, with "
                            "--tgt-tokenizer) when --data is a parallel dataset")
        parser.add_argument("--tgt-tokenizer", type=Path, help="the target side's own tokenizer")
    if family in MODELS:
        add_config_args(parser, MODELS[family].config_cls)
        if _options_cls(family):
            add_config_args(parser, _options_cls(family))
        _add_foreign_flags(parser, family)
    add_config_args(parser, TrainConfig)


def _own_fields(family: str) -> set[str]:
    """The flags of a family's model config and of its objectives' own configs."""
    classes = [MODELS[family].config_cls] + [r.options for (f, _), r in RECIPES.items() if f == family and r.options]
    return {f.name for cls in classes for f in dataclasses.fields(cls) if f.metadata.get("cli", True)}


def _add_foreign_flags(parser: argparse.ArgumentParser, family: str) -> None:
    """Other families' fields are accepted by the parser only to be refused with a clear message."""
    own, train = _own_fields(family), {f.name for f in dataclasses.fields(TrainConfig)}
    foreign = {name for other in MODELS if other != family for name in _own_fields(other)} - own - train
    for name in sorted(foreign):
        parser.add_argument("--" + name.replace("_", "-"), dest=FOREIGN + name, default=None, nargs="?", const=True,
                            help=argparse.SUPPRESS)


def _refuse_foreign_flags(args: argparse.Namespace, family: str) -> None:
    given = [name[len(FOREIGN):] for name, value in vars(args).items()
             if name.startswith(FOREIGN) and value is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        owners = [f for f in MODELS if given[0] in _own_fields(f)]
        own = ", ".join("--" + n.replace("_", "-") for n in sorted(_own_fields(family)) if n != "vocab_size")
        raise InputError(f"{flag} is an option of {', '.join(owners)}, not of {family}; "
                         f"{family}'s model options are {own} (see lmforge train --model {family} --help).")


def start_run(args: argparse.Namespace) -> dict:
    """A new run: resolve configs, write config.toml and tokenizer.json into --out, then train."""
    if args.data is None or args.out is None:
        raise InputError("train: pass --data SHARDS and --out RUN for a new run, or --resume RUN.")
    if args.model in TASK_MODELS:
        raise InputError(f"--model {args.model}: a task body with no language-model objective; train it on a task with "
                         f"`lmforge finetune --task classify --model {args.model} --data DATA --out RUN`.")
    _refuse_foreign_flags(args, args.model)
    if MODELS[args.model].kind == "seq2seq":
        return _start_seq2seq(args)
    meta = read_meta(args.data)
    file_values = read_toml(args.config) if args.config else {}
    options_cls = _options_cls(args.model)
    model_config, train_config, options = resolve_configs(
        args.model, args.preset, meta.vocab_size, file_values,
        values_from_args(args, MODELS[args.model].config_cls), values_from_args(args, TrainConfig),
        values_from_args(args, options_cls) if options_cls else None)
    return new_run(args.out, args.model, args.preset, model_config, train_config, meta,
                   _sample_text(args.model, meta.directory), options)


def _start_seq2seq(args: argparse.Namespace) -> dict:
    shards = pair_shards_for(args.data, args.tokenizer, args.tgt_tokenizer)
    file_values = read_toml(args.config) if args.config else {}
    spec, options_cls = MODELS[args.model], _options_cls(args.model)
    model_config, train_config, options = resolve_seq2seq_configs(
        args.model, args.preset, shards, file_values, values_from_args(args, spec.config_cls),
        values_from_args(args, TrainConfig), values_from_args(args, options_cls))
    return new_seq2seq_run(args.out, args.model, args.preset, model_config, train_config, options, shards)


def resume_run(args: argparse.Namespace) -> dict:
    run = open_run(args.resume)
    family = run.family
    if family in MODELS:
        _refuse_foreign_flags(args, family)
        options_cls = _options_cls(family)
        if values_from_args(args, MODELS[family].config_cls) or (options_cls and values_from_args(args, options_cls)):
            raise InputError(f"{args.resume}: model and objective options cannot change on --resume; start a new "
                             "run instead.")
    if run.contract.kind == "seq2seq":
        return resume_seq2seq(args.resume, values_from_args(args, TrainConfig))
    return resume(args.resume, values_from_args(args, TrainConfig), args.data, _sample_text(family, args.resume))


def _sample_text(family: str, tokenizer_dir: Path):
    """What --sample-every prints: 100 tokens from the start of a document, seeded (decoders only);
    `tokenizer_dir` holds the tokenizer.json of the shards (new run) or of the run (resume)."""
    if family not in MODELS or MODELS[family].kind != "decoder":
        return None
    from lmforge.inference.decoding import generate
    from lmforge.inference.sampling import SamplingConfig
    from lmforge.tokenization.tokenizer import Tokenizer

    loaded: list[Tokenizer] = []  # read at the first sample: a run without --sample-every never needs it

    def sample(model) -> str:
        if not loaded:
            loaded.append(Tokenizer(tokenizer_dir))
        tokenizer = loaded[0]
        was_training = model.training
        model.eval()
        text = generate(model, [tokenizer.eos_id], max_new_tokens=100, sampling=SamplingConfig(temperature=0.8),
                        seed=0, eos_id=tokenizer.eos_id, decode=tokenizer.decode).text
        model.train(was_training)
        return text

    return sample


def run(args: argparse.Namespace) -> int:
    summary = resume_run(args) if args.resume else start_run(args)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    mfu = f", MFU {100 * summary['mfu']:.1f}%" if summary.get("mfu") else ""
    flops = f", {summary['flops_per_token'] / 1e6:.1f} MFLOP/token" if summary.get("flops_per_token") else ""
    val = summary["val_loss"]
    print(f"train: {summary['family']}, {summary['params'] / 1e6:.2f}M params{flops}, {summary['steps']} steps, "
          f"{summary['tokens']:,} tokens, train loss {summary['train_loss']:.4f}, "
          f"val loss (sample) {val if val is None else round(val, 4)}, "
          f"{summary['tokens_per_s']:,.0f} tokens/s{mfu} -> {summary['run_dir']}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 0
