"""An n-gram model behind the decoder protocol, so `generate` samples from it like from any decoder.

The state is the recent words; a step returns log p(next | state) over the vocabulary. Text is a stream
of sentences: </s> ends a line and the next word starts a new sentence from <s>, so generation runs
past sentence ends instead of stopping at the first one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lmforge.ngram.counting import BOS_ID, EOS_ID
from lmforge.ngram.store import NgramRun
from lmforge.tokenization.words import join_words


@dataclass
class NgramState:
    """Per row, every token read (so a row can be cut back) and the recent words its next one follows."""

    read: list[list[int]]
    contexts: list[list[int]]


class NgramDecoder(nn.Module):
    max_context = None   # the model reads only its last order - 1 words, any length fits

    def __init__(self, run: NgramRun):
        super().__init__()
        self.run, self.model = run, run.model

    def new_state(self, batch_size: int = 1, max_len: int | None = None, memory=None, device=None,
                  dtype=None) -> NgramState:
        if memory is not None:
            raise ValueError("an n-gram model reads no encoder memory")
        return NgramState([[] for _ in range(batch_size)], [[BOS_ID] for _ in range(batch_size)])

    def _advance(self, context: list[int], token: int) -> list[int]:
        return [BOS_ID] if token == EOS_ID else [*context, token][-(self.model.order - 1 or 1):]

    def _distribution(self, context: list[int]) -> torch.Tensor:
        probs = torch.from_numpy(self.model.next_distribution(context if self.model.order > 1 else []))
        return probs.clamp_min(1e-30).log().float()

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, state: NgramState,
             keep_last: int | None = None) -> tuple[torch.Tensor, NgramState]:
        """Log-probabilities (B, T, V) of the next word after each column (the last `keep_last` only);
        padding (positions < 0) is not read."""
        T = tokens.size(1)
        first = T - (keep_last or T)
        rows = []
        for ids, where, read, context in zip(tokens.tolist(), positions.tolist(), state.read, state.contexts):
            out = []
            for column, (token, position) in enumerate(zip(ids, where)):
                if position >= 0:
                    read.append(token)
                    context[:] = self._advance(context, token)
                if column >= first:
                    out.append(self._distribution(context))
            rows.append(torch.stack(out))
        return torch.stack(rows), state

    def reorder(self, state: NgramState, index: torch.Tensor) -> NgramState:
        rows = index.tolist()
        return NgramState([list(state.read[i]) for i in rows], [list(state.contexts[i]) for i in rows])

    def join(self, state: NgramState, other: NgramState) -> NgramState:
        """The rows of `state`, then those of `other` (continuous batching: new requests join)."""
        return NgramState(state.read + other.read, state.contexts + other.contexts)

    def truncate(self, state: NgramState, lengths: list[int]) -> NgramState:
        """Each row cut back to its first lengths[b] tokens, its context replayed from them."""
        read, contexts = [], []
        for tokens, length in zip(state.read, lengths):
            if length > len(tokens) or length < 0:
                raise ValueError(f"cannot cut a row of {len(tokens)} tokens back to {length}")
            context = [BOS_ID]
            for token in tokens[:length]:
                context = self._advance(context, token)
            read.append(tokens[:length])
            contexts.append(context)
        return NgramState(read, contexts)


class NgramText:
    """Prompt text -> word ids and word ids -> text, with the run's own splitter."""

    def __init__(self, run: NgramRun):
        self.run = run
        tokenizer = run.splitter.tokenizer
        if tokenizer is not None:   # word strings -> the tokenizer's ids, to decode bytes exactly
            strings = {s: i for i, s in enumerate(run.splitter._strings)}
            self.token_ids = [strings.get(w) for w in run.model.tables.vocab]

    def encode(self, prompt: str) -> list[int]:
        words = [w for sentence in self.run.splitter.sentences([prompt]) for w in sentence]
        return [BOS_ID, *self.run.model.ids(words).tolist()]

    def decode(self, ids: list[int]) -> str:
        vocab = self.run.model.tables.vocab
        tokenizer = self.run.splitter.tokenizer
        lines, line = [], []
        for i in ids:
            if i == EOS_ID:
                lines.append(line)
                line = []
            elif i != BOS_ID:
                line.append(i)
        lines.append(line)
        if tokenizer is None:
            return "\n".join(join_words([vocab[i] for i in words]) for words in lines)
        return "\n".join(tokenizer.decode([self.token_ids[i] for i in words if self.token_ids[i] is not None])
                         for words in lines)
