"""Sequence-to-sequence training: batches of sentence pairs counted in tokens, the objective's options
(label smoothing, word dropout) and the validation loss; `seq2seq_spec` is the TrainSpec of a translation run.

Batches follow the low-resource recipe (Sennrich & Zhang 2019): pairs of similar length share a batch, so
padding is small and a batch holds about `batch_tokens` tokens whatever the sentence lengths. The batches
are fixed once from the lengths (seeded) and each epoch visits them in a fresh seeded order; step s reads
global batches s * G .. s * G + G - 1 (G = grad_accum * world size), so a resumed run and any number of
processes read what one uninterrupted process reads. Each micro-batch's loss is scaled by the target tokens
of the whole step, so the gradient is that of the token mean over the global batch on any world size."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lmforge.evaluation.masked import IGNORE
from lmforge.tokenization.pairs import PairSplit
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training import distributed
from lmforge.training.objectives import OBJECTIVES
from lmforge.training.spec import LoopContext, TrainSpec


@dataclass
class Seq2SeqConfig:
    """The [seq2seq] section of a translation run: how pairs become batches and the loss."""

    batch_tokens: int = 1024
    """Tokens per micro-batch (rows x the longer padded side); --batch-size caps the rows. On a CPU budget
    more, smaller steps win (1,024 beat 2,048 for both families at equal time); raise it on a GPU."""
    label_smoothing: float = 0.1
    """Share of each target token's probability spread over the vocabulary in the loss."""
    word_dropout: float = 0.0
    """Training only: each source token and target input token is replaced by <|mask|> at this rate
    (0.1 regularises long runs on small data; within minutes on a CPU the models underfit, and it cost
    loss at every budget measured)."""
    val_pairs: int = 500
    """Validation pairs scored for the validation loss (from the start of the valid split)."""

    def __post_init__(self) -> None:
        if self.batch_tokens < 1 or self.val_pairs < 0:
            raise ValueError("--batch-tokens must be positive and --val-pairs at least 0")
        if not (0 <= self.label_smoothing < 1 and 0 <= self.word_dropout < 1):
            raise ValueError("--label-smoothing and --word-dropout must be in [0, 1)")


@dataclass(frozen=True)
class SideIds:
    """The special ids one side of a pair needs."""

    bos: int
    eos: int
    pad: int
    mask: int

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> SideIds:
        tokenizer.require("bos", "eos", "pad", "mask", purpose="sequence-to-sequence training")
        return cls(tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.mask_id)


@dataclass
class PairBatch:
    """Sources (right-padded, each ending in EOS) and targets: tgt_in = BOS + y, tgt_out = y + EOS."""

    src: Tensor                  # (B, S) int64
    src_mask: Tensor             # (B, S) bool: real source tokens
    tgt_in: Tensor               # (B, T) int64
    tgt_out: Tensor              # (B, T) int64, IGNORE at padding
    scale: float = 1.0
    """Multiplies the token-mean loss of this micro-batch: its targets * G / the step's targets."""
    smoothing: float = 0.0

    @property
    def n_tokens(self) -> int:
        return int(self.src_mask.sum()) + int((self.tgt_out != IGNORE).sum())


def pair_batch(pairs: list[tuple[np.ndarray, np.ndarray]], src_ids: SideIds, tgt_ids: SideIds) -> PairBatch:
    """The padded tensors of `pairs` (source ids, target ids), no special tokens in them yet."""
    S = max(len(s) for s, _ in pairs) + 1
    T = max(len(t) for _, t in pairs) + 1
    src = np.full((len(pairs), S), src_ids.pad, dtype=np.int64)
    tgt_in = np.full((len(pairs), T), tgt_ids.pad, dtype=np.int64)
    tgt_out = np.full((len(pairs), T), IGNORE, dtype=np.int64)
    for row, (s, t) in enumerate(pairs):
        src[row, :len(s)], src[row, len(s)] = s, src_ids.eos
        tgt_in[row, 0], tgt_in[row, 1:len(t) + 1] = tgt_ids.bos, t
        tgt_out[row, :len(t)], tgt_out[row, len(t)] = t, tgt_ids.eos
    real = np.arange(S)[None, :] <= np.array([len(s) for s, _ in pairs])[:, None]     # the EOS is real too
    return PairBatch(torch.from_numpy(src), torch.from_numpy(real), torch.from_numpy(tgt_in),
                     torch.from_numpy(tgt_out))


def length_buckets(src_len: np.ndarray, tgt_len: np.ndarray, index: np.ndarray, batch_tokens: int,
                   max_rows: int) -> list[np.ndarray]:
    """`index` (pairs in the order to cut) cut into runs whose rows x longest padded side stays within
    batch_tokens (a pair longer than that is a batch of its own), at most max_rows rows each."""
    batches, start, longest = [], 0, 0
    width = np.maximum(src_len[index], tgt_len[index]) + 1
    for i, w in enumerate(width):
        longest_with = max(longest, int(w))
        if i > start and ((i - start + 1) * longest_with > batch_tokens or i - start >= max_rows):
            batches.append(index[start:i])
            start, longest_with = i, int(w)
        longest = longest_with
    if start < len(index):
        batches.append(index[start:])
    return batches


class PairSampler:
    """Token-counted batches of the train split, indexed by step (see the module docstring)."""

    def __init__(self, split: PairSplit, options: Seq2SeqConfig, max_len: int, max_rows: int, grad_accum: int,
                 rank: int, world_size: int, seed: int, src_ids: SideIds, tgt_ids: SideIds, show: bool = True):
        self.split, self.options = split, options
        self.grad_accum, self.rank, self.world_size, self.seed = grad_accum, rank, world_size, seed
        self.src_ids, self.tgt_ids = src_ids, tgt_ids
        src_len, tgt_len = split.lengths()
        fits = (src_len + 1 <= max_len) & (tgt_len + 1 <= max_len)
        skipped = int((~fits).sum())
        if skipped and show:
            print(f"lmforge: warning: {skipped:,} training pairs have a side longer than the model's max_seq_len "
                  f"{max_len} (with BOS/EOS) and are skipped", file=sys.stderr)
        kept = np.flatnonzero(fits)
        if not len(kept):
            from lmforge.errors import InputError

            raise InputError(f"no training pair fits max_seq_len {max_len}; raise --max-seq-len.")
        # shuffle, then a stable sort by length: equal lengths land in batches in a seeded order
        shuffled = kept[np.random.default_rng([seed, 0xB0C]).permutation(len(kept))]
        order = shuffled[np.lexsort((src_len[shuffled], tgt_len[shuffled]))]
        self.batches = length_buckets(src_len, tgt_len, order, options.batch_tokens, max_rows)
        self.targets = np.array([int(tgt_len[b].sum()) + len(b) for b in self.batches], dtype=np.int64)
        self.skipped, self._orders = skipped, {}

    def _batch_at(self, index: int) -> int:
        epoch, k = divmod(index, len(self.batches))
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.batches))}
        return int(self._orders[epoch][k])

    def micro_batch(self, step: int, micro: int) -> PairBatch:
        G = self.grad_accum * self.world_size
        first, index = step * G, step * G + micro * self.world_size + self.rank
        step_targets = sum(int(self.targets[self._batch_at(i)]) for i in range(first, first + G))
        chosen = self.batches[self._batch_at(index)]
        batch = pair_batch([self.split.pair(int(i)) for i in chosen], self.src_ids, self.tgt_ids)
        self._drop_words(batch, np.random.default_rng([self.seed, index, 0xD0]))
        batch.scale = int((batch.tgt_out != IGNORE).sum()) * G / step_targets
        batch.smoothing = self.options.label_smoothing
        return batch

    def _drop_words(self, batch: PairBatch, rng: np.random.Generator) -> None:
        """Word dropout on the real source tokens (not EOS) and the target inputs (not BOS)."""
        rate = self.options.word_dropout
        if rate <= 0:
            return
        src_real = batch.src_mask & (batch.src != self.src_ids.eos)
        tgt_real = batch.tgt_in != self.tgt_ids.pad
        tgt_real[:, 0] = False
        for tokens, real, mask_id in ((batch.src, src_real, self.src_ids.mask), (batch.tgt_in, tgt_real,
                                                                                 self.tgt_ids.mask)):
            drop = torch.from_numpy(rng.random(tuple(tokens.shape)) < rate) & real
            tokens[drop] = mask_id

    def checkpoint_tensors(self, info) -> dict:
        return {}   # the step decides the data

    def restore(self, tensors, info, device) -> None:
        pass


@dataclass
class PairSums:
    """Summed target NLL (nats) and target tokens (EOS included) of scored pairs."""

    nll: float = 0.0
    tokens: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return self.nll / max(self.tokens, 1)


@torch.inference_mode()
def pair_nll(model, split: PairSplit, indices: np.ndarray, src_ids: SideIds, tgt_ids: SideIds, batch_tokens: int,
             device, autocast_dtype=None) -> PairSums:
    """Teacher-forced NLL of the pairs `indices` (length-bucketed, no dropout)."""
    from lmforge.devices import autocast

    was_training = model.training
    model.eval()
    src_len, tgt_len = split.lengths()
    order = indices[np.argsort(np.maximum(src_len[indices], tgt_len[indices]), kind="stable")]
    sums = PairSums()
    for chunk in length_buckets(src_len, tgt_len, order, batch_tokens, 256):
        batch = pair_batch([split.pair(int(i)) for i in chunk], src_ids, tgt_ids)
        with autocast(torch.device(device), autocast_dtype):
            logits = model(batch.src.to(device), batch.src_mask.to(device), batch.tgt_in.to(device)).float()
        targets = batch.tgt_out.to(device)
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE,
                                                reduction="sum")
        sums.nll += float(nll)
        sums.tokens += int((targets != IGNORE).sum())
    model.train(was_training)
    return sums


class PairValidation:
    """The first `val_pairs` pairs of the valid split, split across ranks, scored by target NLL."""

    def __init__(self, split: PairSplit | None, options: Seq2SeqConfig, max_len: int, src_ids: SideIds,
                 tgt_ids: SideIds, loop: LoopContext):
        self.split, self.options, self.loop, self.ids = split, options, loop, (src_ids, tgt_ids)
        self.indices = np.zeros(0, dtype=np.int64)
        if split is not None and len(split) and options.val_pairs:
            src_len, tgt_len = split.lengths()
            fits = np.flatnonzero((src_len + 1 <= max_len) & (tgt_len + 1 <= max_len))[:options.val_pairs]
            self.indices = np.array_split(fits, loop.info.world_size)[loop.info.rank]

    def evaluate(self, model) -> dict | None:
        if self.split is None or not self.options.val_pairs or not len(self.split):
            return None
        sums = pair_nll(model, self.split, self.indices, *self.ids, self.options.batch_tokens, self.loop.device,
                        self.loop.autocast_dtype) if len(self.indices) else PairSums()
        totals = distributed.all_reduce_sum(torch.tensor([sums.nll, float(sums.tokens)], dtype=torch.float64),
                                            self.loop.info)
        return {"val_loss": float(totals[0] / max(totals[1], 1.0))}


def seq2seq_spec(train: PairSplit, valid: PairSplit | None, options: Seq2SeqConfig, max_len: int,
                 src: Tokenizer, tgt: Tokenizer) -> TrainSpec:
    src_ids, tgt_ids = SideIds.of(src), SideIds.of(tgt)
    src_len, tgt_len = train.lengths()
    typical = int(np.maximum(src_len, tgt_len).mean()) + 1 if len(train) else max_len   # attention FLOPs

    def sampler(loop: LoopContext) -> PairSampler:
        return PairSampler(train, options, max_len, loop.batch_size, loop.grad_accum, loop.info.rank,
                           loop.info.world_size, loop.seed, src_ids, tgt_ids, show=loop.info.is_main)

    return TrainSpec(name="seq2seq", objective=OBJECTIVES["seq2seq"], sampler=sampler,
                     validation=lambda loop: PairValidation(valid, options, max_len, src_ids, tgt_ids, loop),
                     seq_len=min(max_len, typical))
