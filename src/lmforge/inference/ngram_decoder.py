"""An n-gram model behind the decoder protocol, so `generate` samples from it like from any decoder.

The state is the recent words; a step returns log p(next | state) over the vocabulary. Text is a stream
of sentences: </s> ends a line and the next word starts a new sentence from <s>, so generation runs
past sentence ends instead of stopping at the first one.
"""

from __future__ import annotations

import torch
from torch import nn

from lmforge.ngram.counting import BOS_ID, EOS_ID
from lmforge.ngram.store import NgramRun


class NgramDecoder(nn.Module):
    max_context = None   # the model reads only its last order - 1 words, any length fits

    def __init__(self, run: NgramRun):
        super().__init__()
        self.model = run.model

    def new_state(self, batch_size: int = 1, device=None, dtype=None) -> list[int]:
        return [BOS_ID]

    def step(self, tokens: torch.Tensor, state: list[int]) -> tuple[torch.Tensor, list[int]]:
        for token in tokens[0].tolist():
            state = [BOS_ID] if token == EOS_ID else [*state, token][-(self.model.order - 1 or 1):]
        probs = torch.from_numpy(self.model.next_distribution(state if self.model.order > 1 else []))
        return probs.clamp_min(1e-30).log().float().view(1, 1, -1), state


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
            return "\n".join(" ".join(vocab[i] for i in words) for words in lines)
        return "\n".join(tokenizer.decode([self.token_ids[i] for i in words if self.token_ids[i] is not None])
                         for words in lines)
