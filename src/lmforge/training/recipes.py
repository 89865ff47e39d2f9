"""What training does with each model family: its objective, batch sampler, evaluation and the
training settings its presets start from. Models may not import training, so the binding lives here;
`models/registry.py` holds the families themselves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lmforge.errors import InputError
from lmforge.evaluation.masked import MaskedSums, masked_sums
from lmforge.evaluation.perplexity import NLLSums, nll_sums, stream_nll_sums
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.batches import MaskedWindowSampler, MaskingRule, StreamSampler, WindowSampler


@dataclass
class DataContext:
    """What a sampler or an evaluation needs to know besides the tokens."""

    seq_len: int
    batch_size: int
    grad_accum: int
    seed: int
    tokenizer: Tokenizer
    mask_rate: float = 0.15
    whole_word_mask: bool = False
    rank: int = 0
    world_size: int = 1
    source: str = ""
    stride: int | None = None
    """Evaluation of Transformer decoders: windows every `stride` tokens (None: non-overlapping)."""


@dataclass(frozen=True)
class Recipe:
    objective: str
    """Key of training/objectives.py OBJECTIVES."""
    sampler: Callable[[np.ndarray, DataContext], WindowSampler]
    evaluate: Callable[..., NLLSums | MaskedSums]
    """(model, tokens, window starts, context, device, autocast dtype, token bytes, bytes per token,
    progress callback) -> sums."""
    sums: type
    train_presets: dict[str, dict] = field(default_factory=dict)
    """preset -> TrainConfig fields that suit that size on a CPU (below --config and flags)."""
    check_tokenizer: Callable[[Tokenizer], None] = lambda tokenizer: None


def masking_rule(ctx: DataContext) -> MaskingRule:
    tok = ctx.tokenizer
    tok.require("mask", "cls", purpose="masked-LM training")
    continues = tok.continuation_table()
    if ctx.whole_word_mask and continues is None:
        raise InputError(f"{tok.path}: --whole-word-mask needs a WordPiece tokenizer (its '##' pieces mark words); "
                         f"this one is {tok.kind}. Drop the flag or train --kind wordpiece.")
    return MaskingRule(cls_id=tok.cls_id, mask_id=tok.mask_id, special=np.array(sorted(tok.special_ids.values())),
                       vocab_size=tok.vocab_size, mask_rate=ctx.mask_rate,
                       continues_word=continues if ctx.whole_word_mask else None)


def _windows(tokens, ctx: DataContext) -> WindowSampler:
    return WindowSampler(tokens, ctx.seq_len, ctx.batch_size, ctx.grad_accum, ctx.rank, ctx.world_size, ctx.seed,
                         ctx.source)


def _streams(tokens, ctx: DataContext) -> StreamSampler:
    return StreamSampler(tokens, ctx.seq_len, ctx.batch_size, ctx.grad_accum, ctx.rank, ctx.world_size, ctx.seed,
                         ctx.source, ctx.tokenizer.eos_id)


def _masked(tokens, ctx: DataContext) -> MaskedWindowSampler:
    return MaskedWindowSampler(tokens, ctx.seq_len, ctx.batch_size, ctx.grad_accum, ctx.rank, ctx.world_size,
                               ctx.seed, ctx.source, masking_rule(ctx))


def _eval_windows(model, tokens, starts, ctx, device, autocast_dtype, token_bytes, bytes_per_token,
                  progress=None) -> NLLSums:
    scored_from = ctx.seq_len - ctx.stride if ctx.stride and ctx.stride < ctx.seq_len else 0
    return nll_sums(model, tokens, starts, ctx.seq_len, ctx.batch_size, device, token_bytes, bytes_per_token,
                    autocast_dtype, progress, scored_from)


def _eval_streams(model, tokens, starts, ctx, device, autocast_dtype, token_bytes, bytes_per_token,
                  progress=None) -> NLLSums:
    return stream_nll_sums(model, tokens, starts, ctx.seq_len, ctx.batch_size, device, token_bytes,
                           bytes_per_token, autocast_dtype, ctx.tokenizer.eos_id, progress)


def masked_eval_batches(tokens: np.ndarray, starts: np.ndarray, ctx: DataContext):
    """The fixed masked validation batches: window k is masked with a generator seeded by k alone."""
    rule = masking_rule(ctx)
    offsets = np.arange(ctx.seq_len - 1)
    for first in range(0, len(starts), ctx.batch_size):
        pairs = [rule.apply(tokens[s + offsets].astype(np.int64)[None], np.random.default_rng([0, int(s)]))
                 for s in starts[first:first + ctx.batch_size]]
        yield (torch.from_numpy(np.concatenate([p[0] for p in pairs])),
               torch.from_numpy(np.concatenate([p[1] for p in pairs])))


def _eval_masked(model: nn.Module, tokens, starts, ctx, device, autocast_dtype, token_bytes, bytes_per_token,
                 progress=None):
    return masked_sums(model, masked_eval_batches(tokens, starts, ctx), device, autocast_dtype, progress)


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

RECIPES: dict[str, Recipe] = {
    "gpt": Recipe(**CAUSAL, train_presets={
        "tiny": dict(batch_size=16, lr=3e-3), "small": dict(batch_size=8, lr=1.5e-3),
        "gpt2-124m": dict(batch_size=8, lr=6e-4), "medium": dict(batch_size=4, lr=3e-4),
        "llama-1b": dict(batch_size=2, lr=3e-4)}),
    "lstm": Recipe(**RECURRENT, train_presets=SGD_LSTM),
    "gru": Recipe(**RECURRENT, train_presets=ADAMW_RECURRENT),
    "rnn": Recipe(**RECURRENT, train_presets=ADAMW_RECURRENT),
    "bert": Recipe(objective="masked_lm", sampler=_masked, evaluate=_eval_masked, sums=MaskedSums,
                   train_presets={"tiny": dict(batch_size=32, lr=2e-3), "small": dict(batch_size=16, lr=1e-3),
                                  "base": dict(batch_size=8, lr=2e-4)},
                   check_tokenizer=lambda tok: tok.require("mask", "cls", purpose="masked-LM training")),
}
