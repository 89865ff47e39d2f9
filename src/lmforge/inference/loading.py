"""Runs rebuilt for use, through one table: each kind of run (runs.RUN_KINDS) is bound here to the loader
that rebuilds it, and `load(path, verb, kinds)` opens a run, refuses in one line a kind the verb does not
serve, and returns the loaded run. `text_decoder` makes any generating run (a decoder language model or
an n-gram model) one thing: a decoder with its own prompt encoding and text decoding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from lmforge.artifacts import load_weights
from lmforge.errors import InputError
from lmforge.models import MODELS, ModelSpec
from lmforge.runs import Run, open_run
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.tokenization.words import join_words


@dataclass
class LoadedRun:
    """A language-model run: the model (eval mode), its tokenizer and the opened run."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    run: Run
    spec: ModelSpec


def load_lm(run: Run, device: torch.device | str = "cpu") -> LoadedRun:
    """The model (eval mode, on `device`) and tokenizer of a language-model run."""
    if run.family not in MODELS:
        raise InputError(f"{run.config_path}: unknown model family {run.family!r}; this lmforge knows "
                         f"{', '.join(MODELS)}.")
    spec = MODELS[run.family]
    model_config = run.section("model", spec.config_cls, spec.fixed)
    model = spec.module_cls(model_config)
    load_weights(model, run.path / "model.safetensors")
    tokenizer = Tokenizer(run.path)
    if tokenizer.vocab_size > model_config.vocab_size:
        raise InputError(f"{run.path}/tokenizer.json: {tokenizer.vocab_size} tokens, more than the model's "
                         f"vocab_size {model_config.vocab_size}; the run directory was mixed up.")
    return LoadedRun(model.to(device).eval(), tokenizer, run, spec)


def _load_task(run: Run, device="cpu"):
    from lmforge.inference.tasks import load_task_run

    return load_task_run(run, device, verb="load")


def _load_ngram(run: Run, device="cpu"):
    from lmforge.ngram.store import load_ngram_run

    return load_ngram_run(run.path)


def _load_vectors(run: Run, device="cpu"):
    from lmforge.embeddings.vectors import load_embed_run

    return load_embed_run(run.path)[0]


def _load_seq2seq(run: Run, device="cpu"):
    from lmforge.inference.translation import load_seq2seq

    return load_seq2seq(run, device)


LOADERS: dict[str, Callable] = {"lm": load_lm, "task": _load_task, "baseline": _load_task, "ngram": _load_ngram,
                                "embeddings": _load_vectors, "seq2seq": _load_seq2seq}


def load(path: Path, verb: str, kinds: tuple[str, ...], device: torch.device | str = "cpu"):
    """The run in `path` loaded by its kind's loader, if `lmforge verb` serves one of `kinds`."""
    run = open_run(path).require(verb, *kinds)
    run.warn_if_interrupted(verb)
    return LOADERS[run.contract.kind](run, device)


@dataclass
class TextDecoder:
    """A run that generates text: a decoder (inference/decoding.py) and how text becomes its ids and back."""

    run: Run
    model: torch.nn.Module
    encode: Callable[[str], list[int]]
    """Prompt text -> the ids the decoder first reads."""
    decode: Callable[[list[int]], str]
    eos_id: int | None
    echo: Callable[[str], str]
    """What a streamed generation prints before its new text (the prompt as the model read it)."""
    tokenizer: Tokenizer | None = None


def text_decoder(path: Path, verb: str = "generate", device: torch.device | str = "cpu") -> TextDecoder:
    """A decoder language model or an n-gram run, ready to generate; an encoder is refused with what to do."""
    run = open_run(path).require(verb, "lm", "ngram")
    if run.contract.kind == "ngram":
        return _ngram_decoder(run)
    loaded = load_lm(run, device)
    if loaded.spec.kind != "decoder":
        raise InputError(f"{run.path}: a {run.family} run is an encoder: it fills in masked tokens but does "
                         "not generate text left to right. Generate with a gpt, lstm, gru or rnn run; use this one "
                         "with `lmforge eval` (masked-LM metrics) or as a backbone for fine-tuning.")
    tokenizer, recurrent = loaded.tokenizer, loaded.model.max_context is None

    def encode(prompt: str) -> list[int]:
        ids = tokenizer.encode(prompt)
        # a recurrent model learned that documents start after EOS, from a fresh state
        return [tokenizer.eos_id, *ids] if not ids or recurrent else ids

    return TextDecoder(run, loaded.model, encode, tokenizer.decode, tokenizer.eos_id, lambda prompt: prompt, tokenizer)


def _ngram_decoder(run: Run) -> TextDecoder:
    """Sampling from an n-gram run: sentences one after another (</s> is a line break)."""
    from lmforge.inference.ngram_decoder import NgramDecoder, NgramText
    from lmforge.ngram.store import load_ngram_run

    loaded = load_ngram_run(run.path)
    text = NgramText(loaded)
    spaced = loaded.splitter.tokenizer is None   # words are joined by spaces; a tokenizer's tokens carry their own

    def echo(prompt: str) -> str:
        prefix = text.decode(text.encode(prompt))
        # as join_words spaces words: none after a character of an unspaced script (Chinese, Japanese, ...)
        return prefix + (" " if prefix and spaced and join_words([prefix, "a"]) != prefix + "a" else "")

    return TextDecoder(run, NgramDecoder(loaded), text.encode, text.decode, None, echo)
