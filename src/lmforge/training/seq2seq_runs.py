"""Start or continue a translation run: what `lmforge train --model transformer|seq2seq-gru|seq2seq-lstm` and
a notebook share. The data is a prepared parallel dataset (with the tokenizer(s) to encode it: the pair
shards are made once and reused) or pair shards themselves; configs resolve as for language models
(defaults < preset < --config < flags), the run directory gets both tokenizers, and the loop gets the
TrainSpec of training/seq2seq.py."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from lmforge.config import build_config
from lmforge.data.pairs import is_pairs_dataset
from lmforge.errors import InputError
from lmforge.models import MODELS
from lmforge.runs import TARGET_TOKENIZER, RunConfig, open_run, write_run
from lmforge.tokenization.pairs import PairShards, is_pair_shards, read_pair_shards, tokenize_pairs
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.config import TrainConfig
from lmforge.training.loop import TrainSetup, train
from lmforge.training.recipes import recipe_for
from lmforge.training.seq2seq import Seq2SeqConfig, seq2seq_spec


def pair_shards_for(data: Path, tokenizer: Path | None, tgt_tokenizer: Path | None) -> PairShards:
    """Pair shards of `data`: the folder itself, or a prepared parallel dataset encoded with the tokenizer(s)."""
    data = Path(data)
    if is_pair_shards(data):
        if tokenizer is not None or tgt_tokenizer is not None:
            raise InputError(f"{data}: pair shards already carry their tokenizers; drop --tokenizer/--tgt-tokenizer.")
        return read_pair_shards(data)
    if not is_pairs_dataset(data):
        raise InputError(f"{data}: neither a parallel dataset (`lmforge prepare SOURCES --pairs --out DIR`) nor pair "
                         "shards; a translation model trains on sentence pairs.")
    if tokenizer is None:
        return _tokenized_pairs_of(data)
    src = Tokenizer(tokenizer)
    tgt = Tokenizer(tgt_tokenizer) if tgt_tokenizer is not None else None
    return read_pair_shards(tokenize_pairs(data, src, tgt))


def _tokenized_pairs_of(data: Path) -> PairShards:
    """The one set of pair shards `lmforge tokenize DATA` wrote into the dataset; an error naming the fix else."""
    written = sorted(p for p in (data / "pair-tokens").glob("*") if is_pair_shards(p))
    if len(written) == 1:
        return read_pair_shards(written[0])
    if written:
        raise InputError(f"{data}: it holds pair shards of {len(written)} tokenizers ("
                         f"{', '.join(p.name for p in written)}); pass one as --data {written[0]}.")
    raise InputError(f"{data}: pass --tokenizer TOK (trained with `lmforge tokenizer train {data} --joint`), and "
                     "--tgt-tokenizer TOK2 when each side has its own.")


def resolve_seq2seq_configs(family: str, preset: str, shards: PairShards, file_values: dict, model_flags: dict,
                            train_flags: dict, option_flags: dict):
    """(model config, train config, seq2seq options) of a new run: defaults < preset < --config < flags;
    the vocabularies come from the shards, and embeddings are shared only when one tokenizer does both sides."""
    spec = MODELS[family]
    if preset not in spec.presets:
        raise InputError(f"--preset {preset!r}: unknown for {family}; choose one of {', '.join(spec.presets)}.")
    recipe = recipe_for(family, "seq2seq")
    meta = shards.meta
    sizes = {"src_vocab_size": meta["src_vocab_size"], "tgt_vocab_size": meta["tgt_vocab_size"]}
    chosen = {**file_values.get("model", {}), **model_flags}
    if not shards.joint:
        if chosen.get("share_embeddings"):
            raise InputError("--share-embeddings: the two sides have their own tokenizers, so their embeddings "
                             "cannot be one matrix; train one joint tokenizer (tokenizer train --joint) to share them.")
        sizes["share_embeddings"] = False
    model_config = build_config(spec.config_cls, spec.presets[preset], sizes, file_values.get("model", {}), model_flags,
                                spec.fixed, source="model config")
    train_config = build_config(TrainConfig, recipe.train_presets.get(preset, {}), file_values.get("train", {}),
                                train_flags, source="train config")
    options = build_config(Seq2SeqConfig, file_values.get("seq2seq", {}), option_flags, source="seq2seq config")
    return model_config, train_config, options


def new_seq2seq_run(out: Path, family: str, preset: str, model_config, train_config: TrainConfig,
                    options: Seq2SeqConfig, shards: PairShards) -> dict:
    """Write the run directory (config.toml, both tokenizers), then train."""
    out = Path(out)
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise InputError(f"{out}: already holds a run with checkpoints; pass --resume {out} to continue it "
                         "or choose another --out.")
    src, tgt = shards.tokenizers()
    for tokenizer in (src, tgt):
        recipe_for(family, "seq2seq").check_tokenizer(tokenizer)
    contract = RunConfig(family, preset, "seq2seq", str(shards.directory.resolve()), src.sha256,
                         corpus=shards.meta.get("data"), kind="seq2seq")
    if int(os.environ.get("RANK", "0")) == 0:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.path, out / "tokenizer.json")
        shutil.copyfile(tgt.path, out / TARGET_TOKENIZER)
    write_run(out, contract, {"model": model_config, "train": train_config, "seq2seq": options})
    return train_seq2seq(out, family, model_config, train_config, options, shards, False)


def resume_seq2seq(run_dir: Path, train_overrides: dict) -> dict:
    """Continue a translation run from its newest checkpoint; training options may change, the model may not."""
    run = open_run(run_dir).require("train --resume", "seq2seq")
    spec = MODELS[run.family]
    model_config = run.section("model", spec.config_cls, spec.fixed)
    train_config = run.section("train", TrainConfig, train_overrides)
    options = run.section("seq2seq", Seq2SeqConfig)
    if train_overrides:
        write_run(run.path, run.contract, {**run.sections, "train": asdict(train_config)})
    shards = read_pair_shards(Path(run.contract.shards))
    if shards.meta["src_tokenizer_sha256"] != Tokenizer(run.path / "tokenizer.json").sha256:
        raise InputError(f"{shards.directory}: these pair shards were made with another tokenizer than {run.path}'s.")
    return train_seq2seq(run.path, run.family, model_config, train_config, options, shards, True)


def train_seq2seq(run_dir: Path, family: str, model_config, train_config: TrainConfig, options: Seq2SeqConfig,
                  shards: PairShards, resume: bool) -> dict:
    torch.manual_seed(train_config.seed)   # the initial weights depend on the seed alone
    model = MODELS[family].module_cls(model_config)
    src, tgt = shards.tokenizers()
    valid = shards.split("valid") if shards.has("valid") else None
    spec = seq2seq_spec(shards.split("train"), valid, options, model_config.max_seq_len, src, tgt)
    return train(TrainSetup(Path(run_dir), model, train_config, spec, family, resume))
