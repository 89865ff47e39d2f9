"""What training does with each (model family, objective): its batch sampler, evaluation, and the training
settings its presets start from; and the `TrainSpec` of a language-model run. Models may not import
training, so the binding lives here; `models/registry.py` holds the families themselves. A family may
carry several objectives (a decoder later also trains on chat); its first one is its default."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lmforge.errors import InputError
from lmforge.evaluation.masked import MaskedSums, masked_sums
from lmforge.evaluation.perplexity import NLLSums, nll_sums, stream_nll_sums
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training import distributed
from lmforge.training.batches import StreamSampler, WindowSampler, spread_windows
from lmforge.training.masked_lm import MaskedLMConfig, MaskedWindowSampler, masked_eval_batches, masking_rule
from lmforge.training.objectives import OBJECTIVES
from lmforge.training.seq2seq import Seq2SeqConfig
from lmforge.training.spec import LoopContext, TrainSpec


@dataclass
class DataContext:
    """What a sampler or an evaluation needs to know besides the tokens."""

    seq_len: int
    batch_size: int
    grad_accum: int
    seed: int
    tokenizer: Tokenizer
    masked_lm: MaskedLMConfig = field(default_factory=MaskedLMConfig)
    rank: int = 0
    world_size: int = 1
    source: str = ""
    stride: int | None = None
    """Evaluation of Transformer decoders: windows every `stride` tokens (None: non-overlapping)."""


@dataclass(frozen=True)
class Recipe:
    family: str
    objective: str
    """Key of training/objectives.py OBJECTIVES."""
    sampler: Callable[[np.ndarray, DataContext], WindowSampler] | None
    """Language models: the windows of a token stream (None for seq2seq: pairs, training/seq2seq.py)."""
    evaluate: Callable[..., NLLSums | MaskedSums] | None
    """Language models: (model, tokens, window starts, context, device, autocast dtype, token bytes, bytes
    per token, progress callback) -> sums."""
    sums: type | None
    train_presets: dict[str, dict] = field(default_factory=dict)
    """preset -> TrainConfig fields that suit that size on a CPU (below --config and flags)."""
    options: type | None = None
    """The objective's own config dataclass (its [section] of config.toml and its flags), if it has one."""
    check_tokenizer: Callable[[Tokenizer], None] = lambda tokenizer: None

    @property
    def window(self) -> Callable[[int], int]:
        """Tokens of the stream in a window of seq_len (an encoder window starts with [CLS])."""
        return (lambda seq_len: seq_len - 1) if self.objective == "masked_lm" else (lambda seq_len: seq_len)


def _windows(tokens, ctx: DataContext) -> WindowSampler:
    return WindowSampler(tokens, ctx.seq_len, ctx.batch_size, ctx.grad_accum, ctx.rank, ctx.world_size, ctx.seed,
                         ctx.source)


def _streams(tokens, ctx: DataContext) -> StreamSampler:
    return StreamSampler(tokens, ctx.seq_len, ctx.batch_size, ctx.grad_accum, ctx.rank, ctx.world_size, ctx.seed,
                         ctx.source, ctx.tokenizer.eos_id)


def _masked(tokens, ctx: DataContext) -> MaskedWindowSampler:
    return MaskedWindowSampler(tokens, ctx.seq_len, ctx.batch_size, ctx.grad_accum, ctx.rank, ctx.world_size,
                               ctx.seed, ctx.source, masking_rule(ctx.tokenizer, ctx.masked_lm))


def _eval_windows(model, tokens, starts, ctx, device, autocast_dtype, token_bytes, bytes_per_token,
                  progress=None) -> NLLSums:
    scored_from = ctx.seq_len - ctx.stride if ctx.stride and ctx.stride < ctx.seq_len else 0
    return nll_sums(model, tokens, starts, ctx.seq_len, ctx.batch_size, device, token_bytes, bytes_per_token,
                    autocast_dtype, progress, scored_from)


def _eval_streams(model, tokens, starts, ctx, device, autocast_dtype, token_bytes, bytes_per_token,
                  progress=None) -> NLLSums:
    return stream_nll_sums(model, tokens, starts, ctx.seq_len, ctx.batch_size, device, token_bytes,
                           bytes_per_token, autocast_dtype, ctx.tokenizer.eos_id, progress)


def _eval_masked(model: nn.Module, tokens, starts, ctx, device, autocast_dtype, token_bytes, bytes_per_token,
                 progress=None):
    batches = masked_eval_batches(tokens, starts, ctx.seq_len, ctx.batch_size, masking_rule(ctx.tokenizer,
                                                                                            ctx.masked_lm))
    return masked_sums(model, batches, device, autocast_dtype, progress)


CAUSAL = dict(objective="causal_lm", sampler=_windows, evaluate=_eval_windows, sums=NLLSums)
RECURRENT = dict(objective="recurrent_lm", sampler=_streams, evaluate=_eval_streams, sums=NLLSums)
# GRU and Elman RNN train best with AdamW here; plain SGD at LR 20 made the Elman RNN diverge
ADAMW_RECURRENT = {"tiny": dict(batch_size=32, seq_len=64, lr=3e-3, weight_decay=0.01),
                   "small": dict(batch_size=32, seq_len=64, lr=2e-3, weight_decay=0.01),
                   "medium": dict(batch_size=32, seq_len=128, lr=1e-3, weight_decay=0.01)}
# the LSTM keeps the classic recipe (Zaremba et al.; PyTorch's word_language_model): plain SGD at a
# large constant LR with tight clipping reached 1.21 nats/char in 60 s where AdamW 3e-3 reached 1.41
SGD_LSTM = {preset: dict(values, optimizer="sgd", lr=20.0, grad_clip=0.25, weight_decay=0.0, schedule="constant")
            for preset, values in ADAMW_RECURRENT.items()}

# translation on a CPU: rows capped high (the token count decides), AdamW, a short warmup
SEQ2SEQ_RNN = {preset: dict(batch_size=512, lr=lr, weight_decay=0.0, beta2=0.98, grad_clip=1.0)
               for preset, lr in (("tiny", 2e-3), ("small", 1e-3), ("base", 1e-3))}
SEQ2SEQ_TRANSFORMER = {preset: dict(batch_size=512, lr=lr, weight_decay=0.01, beta2=0.98, grad_clip=1.0)
                       for preset, lr in (("tiny", 5e-4), ("small", 1e-3), ("base", 5e-4))}   # tiny: post-norm

RECIPES: dict[tuple[str, str], Recipe] = {(r.family, r.objective): r for r in [
    Recipe("gpt", **CAUSAL, train_presets={
        "tiny": dict(batch_size=16, lr=3e-3), "small": dict(batch_size=8, lr=1.5e-3),
        "gpt2-124m": dict(batch_size=8, lr=6e-4), "medium": dict(batch_size=4, lr=3e-4),
        "llama-1b": dict(batch_size=2, lr=3e-4)}),
    Recipe("lstm", **RECURRENT, train_presets=SGD_LSTM),
    Recipe("gru", **RECURRENT, train_presets=ADAMW_RECURRENT),
    Recipe("rnn", **RECURRENT, train_presets=ADAMW_RECURRENT),
    Recipe("bert", objective="masked_lm", sampler=_masked, evaluate=_eval_masked, sums=MaskedSums,
           train_presets={"tiny": dict(batch_size=32, lr=2e-3), "small": dict(batch_size=16, lr=1e-3),
                          "base": dict(batch_size=8, lr=2e-4)}, options=MaskedLMConfig,
           check_tokenizer=lambda tok: tok.require("mask", "cls", purpose="masked-LM training")),
    *[Recipe(family, "seq2seq", None, None, None, train_presets=presets, options=Seq2SeqConfig,
             check_tokenizer=lambda tok: tok.require("bos", "eos", "pad", "mask", purpose="translation"))
      for family, presets in (("seq2seq-gru", SEQ2SEQ_RNN), ("seq2seq-lstm", SEQ2SEQ_RNN),
                              ("transformer", SEQ2SEQ_TRANSFORMER))],
]}


def recipe_for(family: str, objective: str | None = None) -> Recipe:
    """The recipe of (family, objective); the family's first objective when none is named."""
    if objective is None:
        objective = next((o for f, o in RECIPES if f == family), None)
    if (family, objective) not in RECIPES:
        offered = ", ".join(o for f, o in RECIPES if f == family) or "none"
        raise InputError(f"--objective {objective}: {family} trains with {offered}.")
    return RECIPES[(family, objective)]


class WindowValidation:
    """The validation sample (windows spread over the split), split into contiguous runs across ranks,
    scored by the recipe."""

    def __init__(self, tokens: np.ndarray | None, recipe: Recipe, data: DataContext, loop: LoopContext):
        self.tokens, self.recipe, self.data, self.loop = tokens, recipe, data, loop
        window = recipe.window(data.seq_len)
        if self.tokens is not None and len(self.tokens) < window + 2:
            if loop.info.is_main:
                print(f"lmforge: warning: the val split has {len(self.tokens)} tokens, fewer than one window of "
                      f"{window + 1}; training without validation", file=sys.stderr)
            self.tokens = None
        if self.tokens is not None:
            starts = spread_windows(self.tokens, window, loop.eval_windows)
            self.starts = np.array_split(starts, loop.info.world_size)[loop.info.rank]

    def evaluate(self, model) -> dict | None:
        if self.tokens is None:
            return None
        sums = self.recipe.evaluate(model, self.tokens, self.starts, self.data, self.loop.device,
                                    self.loop.autocast_dtype, None, 1.0)
        totals = distributed.all_reduce_sum(torch.tensor(sums.values(), dtype=torch.float64), self.loop.info)
        return {"val_loss": self.recipe.sums.of(totals.tolist()).report()["val_loss"]}


def lm_spec(recipe: Recipe, train_tokens: np.ndarray, val_tokens: np.ndarray | None, tokenizer: Tokenizer,
            seq_len: int, options=None, source: str = "") -> TrainSpec:
    """The TrainSpec of a language-model run: windows (or streams) of the train split, the validation
    sample of the val split."""
    def data(loop: LoopContext) -> DataContext:
        return DataContext(seq_len, loop.batch_size, loop.grad_accum, loop.seed, tokenizer,
                           options or MaskedLMConfig(), loop.info.rank, loop.info.world_size, source)

    return TrainSpec(name=f"{recipe.family} {recipe.objective}", objective=OBJECTIVES[recipe.objective],
                     sampler=lambda loop: recipe.sampler(train_tokens, data(loop)),
                     validation=lambda loop: WindowValidation(val_tokens, recipe, data(loop), loop),
                     seq_len=seq_len)
