"""The masked-LM objective's own settings and data: BERT's masking rule, the sampler of masked windows
and the fixed masked validation batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmforge.errors import InputError
from lmforge.evaluation.masked import IGNORE
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.batches import MLMBatch, WindowSampler


@dataclass
class MaskedLMConfig:
    mask_rate: float = 0.15
    """Fraction of tokens predicted (80% of them shown as [MASK], 10% random, 10% kept)."""
    whole_word_mask: bool = False
    """Mask whole words, all their WordPiece pieces together."""

    def __post_init__(self) -> None:
        if not 0 < self.mask_rate < 1:
            raise ValueError(f"--mask-rate must be in (0, 1), got {self.mask_rate}")


class MaskedWindowSampler(WindowSampler):
    """Masked-LM windows: [CLS] + seq_len - 1 tokens of the stream; `mask_rate` of the ordinary tokens
    (or of whole words) are chosen, and of those 80% become [MASK], 10% a random token, 10% stay."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, grad_accum: int, rank: int,
                 world_size: int, seed: int, source: str, masking: MaskingRule):
        super().__init__(tokens, seq_len - 1, batch_size, grad_accum, rank, world_size, seed, source)
        self.masking = masking

    def micro_batch(self, step: int, micro: int) -> MLMBatch:
        starts = self.starts(step)
        rng = np.random.default_rng([self.seed, step, 1])  # masks of the whole global batch: rank-independent
        offsets = starts[:, None] + np.arange(self.seq_len)[None, :]
        tokens, targets = self.masking.apply(self.tokens[offsets].astype(np.int64), rng)
        rows = self.rows(micro)
        return MLMBatch(torch.from_numpy(tokens[rows]), torch.from_numpy(targets[rows]))


@dataclass
class MaskingRule:
    """BERT's masking of a (B, T) window batch; `special` ids are never chosen, `continues_word`
    (vocab-sized bool) marks sub-word pieces that continue a word (for whole-word masking)."""

    cls_id: int
    mask_id: int
    special: np.ndarray
    vocab_size: int
    mask_rate: float = 0.15
    continues_word: np.ndarray | None = None

    def apply(self, windows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of shape (B, T + 1): [CLS] first, then the masked windows."""
        candidates = ~np.isin(windows, self.special)
        draw = rng.random(windows.shape)
        if self.continues_word is None:
            chosen = candidates & (draw < self.mask_rate)
        else:  # a word is chosen by the draw at its first piece; its continuation pieces follow it
            chosen = self._whole_words(candidates & ~self.continues_word[windows], candidates, draw)
        action = rng.random(windows.shape)
        inputs = windows.copy()
        inputs[chosen & (action < 0.8)] = self.mask_id
        randomised = chosen & (action >= 0.8) & (action < 0.9)
        inputs[randomised] = rng.integers(0, self.vocab_size, size=int(randomised.sum()))
        targets = np.where(chosen, windows, IGNORE)
        cls = np.full((len(windows), 1), self.cls_id, dtype=np.int64)
        return np.concatenate([cls, inputs], axis=1), np.concatenate([np.full_like(cls, IGNORE), targets], axis=1)

    def _whole_words(self, starts: np.ndarray, candidates: np.ndarray, draw: np.ndarray) -> np.ndarray:
        """A piece is chosen when the draw at the start of its word is under the rate."""
        B, T = starts.shape
        word_start = np.where(starts, np.arange(T)[None, :], -1)
        word_start = np.maximum.accumulate(word_start, axis=1)      # position of each piece's word start
        valid = candidates & (word_start >= 0)
        start_draw = np.take_along_axis(draw, np.maximum(word_start, 0), axis=1)
        return valid & (start_draw < self.mask_rate)


def masking_rule(tokenizer: Tokenizer, options: MaskedLMConfig) -> MaskingRule:
    tokenizer.require("mask", "cls", purpose="masked-LM training")
    continues = tokenizer.continuation_table()
    if options.whole_word_mask and continues is None:
        raise InputError(f"{tokenizer.path}: --whole-word-mask needs a WordPiece tokenizer (its '##' pieces mark "
                         f"words); this one is {tokenizer.kind}. Drop the flag or train --kind wordpiece.")
    return MaskingRule(cls_id=tokenizer.cls_id, mask_id=tokenizer.mask_id,
                       special=np.array(sorted(tokenizer.special_ids.values())), vocab_size=tokenizer.vocab_size,
                       mask_rate=options.mask_rate, continues_word=continues if options.whole_word_mask else None)


def masked_eval_batches(tokens: np.ndarray, starts: np.ndarray, seq_len: int, batch_size: int, rule: MaskingRule):
    """The fixed masked validation batches: window k is masked with a generator seeded by k alone."""
    offsets = np.arange(seq_len - 1)
    for first in range(0, len(starts), batch_size):
        pairs = [rule.apply(tokens[s + offsets].astype(np.int64)[None], np.random.default_rng([0, int(s)]))
                 for s in starts[first:first + batch_size]]
        yield (torch.from_numpy(np.concatenate([p[0] for p in pairs])),
               torch.from_numpy(np.concatenate([p[1] for p in pairs])))
