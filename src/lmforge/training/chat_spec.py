"""The TrainSpec of chat fine-tuning, the second objective of the decoder families: conversations laid
out by the chat template (tokenization/chat.py) are packed end to end into one stream, cut into windows
of seq_len, and the next-token loss reads only the targets inside assistant replies (their content and
end token); everything else is IGNORE. The family's own language-model loss is used (causal for the GPT,
the recurrent one, reset at each conversation's start, for LSTM/GRU/RNN), so the masked loss is the
fused head of pre-training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lmforge.errors import InputError
from lmforge.evaluation.masked import IGNORE
from lmforge.training import distributed
from lmforge.training.batches import LMBatch
from lmforge.training.objectives import OBJECTIVES
from lmforge.training.spec import LoopContext, TrainSpec

CHAT_LOSS = {"gpt": "causal_lm", "lstm": "recurrent_lm", "gru": "recurrent_lm", "rnn": "recurrent_lm"}


@dataclass
class PackedConversations:
    """Conversations one after another: ids (N,) and, per id, whether it is a trained target."""

    ids: np.ndarray        # (N,) int64
    trained: np.ndarray    # (N,) bool

    @classmethod
    def of(cls, rendered: list[tuple[list[int], list[bool]]]) -> PackedConversations:
        ids = np.fromiter((i for r in rendered for i in r[0]), dtype=np.int64)
        trained = np.fromiter((t for r in rendered for t in r[1]), dtype=bool)
        return cls(ids, trained)

    def targets(self) -> np.ndarray:
        """targets[i] = ids[i + 1] where that id is trained, else IGNORE (N - 1,)."""
        return np.where(self.trained[1:], self.ids[1:], IGNORE)


class ChatSampler:
    """Non-overlapping windows of the packed stream in a shuffled order per pass; the batch of a step
    depends on (seed, step) alone, so resume is exact and ranks split each global batch."""

    def __init__(self, packed: PackedConversations, seq_len: int, batch_size: int, grad_accum: int, rank: int,
                 world_size: int, seed: int, eos_id: int, recurrent: bool):
        self.ids, self.next_ids = packed.ids, packed.targets()
        self.seq_len, self.batch_size, self.grad_accum = seq_len, batch_size, grad_accum
        self.rank, self.world_size, self.seed, self.eos_id, self.recurrent = rank, world_size, seed, eos_id, recurrent
        self.n_windows = (len(self.ids) - 1) // seq_len
        if self.n_windows < 1:
            raise InputError(f"chat data: {len(self.ids)} tokens, fewer than one window of {seq_len + 1}; use "
                             "more conversations or a smaller --max-len.")
        self.global_batch = batch_size * grad_accum * world_size

    def _window_index(self, step: int) -> np.ndarray:
        first = step * self.global_batch
        index = np.arange(first, first + self.global_batch)
        passes, within = index // self.n_windows, index % self.n_windows
        out = np.empty_like(index)
        for p in np.unique(passes):
            order = np.random.default_rng([self.seed, int(p)]).permutation(self.n_windows)
            out[passes == p] = order[within[passes == p]]
        return out

    def micro_batch(self, step: int, micro: int) -> LMBatch:
        first = (micro * self.world_size + self.rank) * self.batch_size
        starts = self._window_index(step)[first:first + self.batch_size] * self.seq_len
        span = np.arange(self.seq_len)
        tokens = torch.from_numpy(self.ids[starts[:, None] + span])
        targets = torch.from_numpy(self.next_ids[starts[:, None] + span])
        resets = tokens == self.eos_id if self.recurrent else None
        return LMBatch(tokens, targets, resets, None)

    def checkpoint_tensors(self, info: distributed.DistInfo) -> dict[str, Tensor]:
        return {}

    def restore(self, tensors: dict[str, Tensor], info: distributed.DistInfo, device) -> None:
        pass


@torch.inference_mode()
def reply_nll(model, rendered: list[tuple[list[int], list[bool]]], device, batch_size: int = 16,
              max_len: int | None = None) -> tuple[float, int]:
    """(summed negative log-likelihood, tokens) of the trained ids of each conversation, read from its start
    (a conversation longer than `max_len` is cut to its first max_len ids)."""
    total, count = 0.0, 0
    order = sorted(range(len(rendered)), key=lambda i: len(rendered[i][0]))
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        chunk = [rendered[i] for i in order[start:start + batch_size]]
        width = max(len(ids[:max_len] if max_len else ids) for ids, _ in chunk)
        tokens = torch.zeros((len(chunk), width), dtype=torch.long)
        targets = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        for row, (ids, trained) in enumerate(chunk):
            ids, trained = (ids[:max_len], trained[:max_len]) if max_len else (ids, trained)
            tokens[row, :len(ids)] = torch.tensor(ids)
            targets[row, :len(ids) - 1] = torch.where(torch.tensor(trained[1:]), torch.tensor(ids[1:]), IGNORE)
        logits = model(tokens.to(device)).float()                                  # (B, T, V): padding is last
        picked = targets.to(device) != IGNORE
        if picked.any():
            nll = torch.nn.functional.cross_entropy(logits[picked], targets.to(device)[picked], reduction="sum")
            total, count = total + float(nll), count + int(picked.sum())
    model.train(was_training)
    return total, count


@dataclass
class ChatValidation:
    valid: list[tuple[list[int], list[bool]]]
    max_len: int
    loop: LoopContext

    def evaluate(self, model) -> dict | None:
        if not self.valid:
            return None
        total, count = reply_nll(model, self.valid, self.loop.device, max_len=self.max_len)
        return {"val_loss": total / max(count, 1)}


def chat_spec(family: str, train: PackedConversations, valid: list[tuple[list[int], list[bool]]], seq_len: int,
              eos_id: int) -> TrainSpec:
    recurrent = CHAT_LOSS[family] == "recurrent_lm"

    def sampler(loop: LoopContext) -> ChatSampler:
        return ChatSampler(train, seq_len, loop.batch_size, loop.grad_accum, loop.info.rank, loop.info.world_size,
                           loop.seed, eos_id, recurrent)

    return TrainSpec(name=f"{family} chat", objective=OBJECTIVES[CHAT_LOSS[family]], sampler=sampler,
                     validation=lambda loop: ChatValidation(valid, seq_len, loop), seq_len=seq_len)
