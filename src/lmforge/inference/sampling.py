"""Turn next-token logits into tokens: repetition penalty, temperature, top-k, top-p. Rows of a batch
are filtered together and drawn each with its own generator, so a row's tokens for a given seed are
the same whatever else shares the batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SamplingConfig:
    temperature: float = 0.8
    """Softmax temperature; 0 means greedy decoding."""
    top_k: int | None = None
    """Sample only among the k most likely tokens."""
    top_p: float | None = 0.95
    """Nucleus sampling: the smallest set of tokens whose probability reaches p."""
    repetition_penalty: float = 1.0
    """> 1 discourages tokens already in the context (CTRL-style: logits divided/multiplied)."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k <= 0:
            raise ValueError(f"--top-k must be positive, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"--repetition-penalty must be positive, got {self.repetition_penalty}")


def apply_repetition_penalty(logits: Tensor, context: Tensor | None, penalty: float) -> Tensor:
    """logits (V,), context (n,) token ids already present."""
    if penalty == 1.0 or context is None or context.numel() == 0:
        return logits
    seen = logits[context]
    logits = logits.clone()
    logits[context] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits


def filter_top_k_top_p(logits: Tensor, top_k: int | None, top_p: float | None) -> Tensor:
    """Set the logits of excluded tokens to -inf, along the last dimension of (V,) or (B, V); the most
    likely token is always kept."""
    if top_k is not None and top_k < logits.size(-1):
        threshold = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        drop_sorted = probs.cumsum(-1) - probs >= top_p   # mass before this token already >= p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _penalised(logits: Tensor, histories: list[Tensor | None] | None, penalty: float) -> Tensor:
    """(B, V) float logits with each row's repetition penalty applied."""
    logits = logits.float()
    if penalty == 1.0 or histories is None:
        return logits
    return torch.stack([apply_repetition_penalty(row, history, penalty) for row, history in zip(logits, histories)])


def next_token_probs(logits: Tensor, context: Tensor | None, config: SamplingConfig) -> Tensor:
    """The distribution `sample_next` draws from, (V,) float: one-hot on the argmax when greedy."""
    logits = apply_repetition_penalty(logits.float(), context, config.repetition_penalty)
    if config.temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.size(-1)).float()
    return filter_top_k_top_p(logits / config.temperature, config.top_k, config.top_p).softmax(-1)


def sample_rows(logits: Tensor, histories: list[Tensor | None] | None, config: SamplingConfig,
                generators: list[torch.Generator]) -> list[int]:
    """One token id per row of (B, V) logits; row b draws with generators[b] alone."""
    logits = _penalised(logits, histories, config.repetition_penalty)
    if config.temperature == 0:
        return logits.argmax(dim=-1).tolist()
    probs = filter_top_k_top_p(logits / config.temperature, config.top_k, config.top_p).softmax(-1)
    return [int(torch.multinomial(row, 1, generator=generator)) for row, generator in zip(probs, generators)]


def sample_next(logits: Tensor, context: Tensor | None, config: SamplingConfig, generator: torch.Generator) -> int:
    """One token id from logits (V,)."""
    return sample_rows(logits[None], None if context is None else [context], config, [generator])[0]


def repeated_ngram_bans(history: list[int], n: int) -> list[int]:
    """Tokens that would repeat an n-gram already in `history` if they came next (no_repeat_ngram_size)."""
    if n <= 0 or len(history) < n:
        return []
    tail = tuple(history[len(history) - n + 1:]) if n > 1 else ()
    return [history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i:i + n - 1]) == tail]


def ban_repeated_ngrams(logits: Tensor, histories: list[list[int]], n: int) -> Tensor:
    """(B, V) logits with -inf on each row's tokens that would repeat one of its n-grams."""
    if n <= 0:
        return logits
    logits = logits.clone()
    for row, history in enumerate(histories):
        banned = repeated_ngram_bans(history, n)
        if banned:
            logits[row, banned] = float("-inf")
    return logits


def seeded_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with `seed` (a fresh random seed when None)."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed if seed is not None else torch.seed())
    return generator
