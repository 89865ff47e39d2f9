"""The decoder protocol, and batched generation through it (greedy or sampled, KV-cached, with stop
strings and streaming).

Every decoder family implements `Decoder`: the GPT's KV cache, a recurrent hidden state and an n-gram
context are three kinds of state, and this file knows none of them. A batch of prompts decodes
together: each row has its own length, position, stop rule and random generator, so a row's text
for a given seed is the one it gets alone; rows that finish leave the batch (`reorder`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from lmforge.inference.sampling import SamplingConfig, ban_repeated_ngrams, sample_rows, seeded_generator


@runtime_checkable
class Decoder(Protocol):
    """What generation, beam search and speculative decoding need of a model.

    State is opaque to callers; every call returns the state to use next (it may be the same object).
    Positions are per row and per token; a position < 0 marks padding, which only comes before a row's
    tokens in a chunk (prompts of different lengths are left-padded) and never enters its state."""

    max_context: int | None
    """Longest context the state holds (None: any length)."""

    def new_state(self, batch_size: int, max_len: int | None = None, memory: Any = None,
                  device=None, dtype=None) -> Any:
        """Empty state for `batch_size` rows of up to `max_len` tokens. `memory` is what an encoder-decoder
        model's `encode` gave for the rows' sources (models.layers.EncoderOutput); decoder-only models
        refuse one."""

    def step(self, tokens: Tensor, positions: Tensor, state: Any, keep_last: int | None = None) -> tuple[Tensor, Any]:
        """Logits (B, T, V) for `tokens` (B, T) at `positions` (B, T) after each row's state (only the last
        `keep_last` columns when given), and the state that has read them."""

    def reorder(self, state: Any, index: Tensor) -> Any:
        """The state of rows `index` (B',), in that order: beams that survive, rows that go on."""

    def truncate(self, state: Any, lengths: list[int]) -> Any:
        """Each row cut back to its first lengths[b] tokens (drafts a verifier rejected)."""


@runtime_checkable
class JoinableDecoder(Decoder, Protocol):
    """A decoder whose batches new rows can join between steps (continuous batching in serving/): the
    decoder-only families. An encoder-decoder's rows carry sources of their own lengths; it decodes a batch
    from start to end instead."""

    def join(self, state: Any, other: Any) -> Any:
        """The rows of `state` followed by those of `other`."""


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    stop_reason: str  # "eos", "stop_string" or "length"


class TextStream:
    """Decodes a row's growing token list and hands out only the new, complete text."""

    def __init__(self, decode: Callable[[list[int]], str], stops: list[str], on_text: Callable[[str], None] | None):
        self.decode, self.stops, self.on_text = decode, stops, on_text
        self.emitted = ""

    def push(self, ids: list[int]) -> bool:
        """True when a stop string has appeared."""
        text = self.decode(ids)
        cut = min((text.find(s) for s in self.stops if s in text), default=-1)
        if cut >= 0:
            text = text[:cut]
        # hold back a partial UTF-8 character and anything that may be the start of a stop string
        safe = len(text) if cut >= 0 else len(text.rstrip("\ufffd"))
        if cut < 0:
            for stop in self.stops:
                for k in range(min(len(stop) - 1, safe), 0, -1):
                    if text[:safe].endswith(stop[:k]):
                        safe -= k
                        break
        if safe > len(self.emitted) and self.on_text:
            self.on_text(text[len(self.emitted):safe])
        self.emitted = text[:max(safe, len(self.emitted))]
        return cut >= 0

    def finish(self, ids: list[int]) -> str:
        text = self.decode(ids)
        cut = min((text.find(s) for s in self.stops if s in text), default=-1)
        text = text if cut < 0 else text[:cut]
        if self.on_text and len(text) > len(self.emitted):
            self.on_text(text[len(self.emitted):])
        return text


def left_padded(chunks: list[list[int]], starts: list[int], device) -> tuple[Tensor, Tensor]:
    """(tokens, positions), each (B, T), of rows of different lengths: padding (token 0, position -1)
    first, then row b's tokens at positions starts[b], starts[b] + 1, ..."""
    if all(len(c) == 1 for c in chunks):   # the common decoding step: one new token per row
        return (torch.tensor(chunks, dtype=torch.long, device=device),
                torch.tensor(starts, dtype=torch.long, device=device)[:, None])
    width = max(1, max(len(c) for c in chunks))
    tokens = torch.zeros((len(chunks), width), dtype=torch.long)
    positions = torch.full((len(chunks), width), -1, dtype=torch.long)
    for row, (chunk, start) in enumerate(zip(chunks, starts)):
        if chunk:
            tokens[row, width - len(chunk):] = torch.tensor(chunk)
            positions[row, width - len(chunk):] = torch.arange(start, start + len(chunk))
    return tokens.to(device), positions.to(device)


def start_context(prompt_ids: list[int], max_len: int | None, eos_id: int | None) -> list[int]:
    """What a decoder first reads: the prompt's last max_len - 1 tokens (room for one new token), or EOS
    alone for an empty prompt (documents start after an EOS)."""
    context = list(prompt_ids)[-(max_len - 1):] if max_len else list(prompt_ids)
    return context or [eos_id if eos_id is not None else 0]


@dataclass
class _Row:
    """One prompt's decoding: its context, what its state has read, and its output so far."""

    context: list[int]
    generator: torch.Generator
    stream: TextStream
    limit: int = 0                                  # new tokens this row may generate
    seen: int = 0                                   # tokens of `context` in the state
    pending: list[int] = field(default_factory=list)
    new_ids: list[int] = field(default_factory=list)
    reason: str | None = None

    def __post_init__(self) -> None:
        self.pending = list(self.context)


def _device_and_dtype(model) -> tuple[torch.device, torch.dtype | None]:
    param = next(model.parameters(), None)   # a counting model (n-gram) has no parameters
    return (param.device, param.dtype) if param is not None else (torch.device("cpu"), None)


def _capacity(model, rows: list[_Row], max_new_tokens: int) -> int | None:
    """Tokens a row's state must hold: the longest prompt and its new tokens, at most the model's context
    (a shorter cache is faster to move and to attend over)."""
    longest = max(len(row.context) for row in rows) + max_new_tokens
    return min(longest, model.max_context) if model.max_context else None


def _refill(model, rows: list[_Row], state, use_cache: bool, device, dtype):
    """Without the cache, or when a row's next tokens would overflow the context, that row re-reads its
    recent context from an empty state (all of it without the cache, its recent half when full)."""
    max_len = model.max_context
    if not use_cache:
        window = max_len or None
        for row in rows:
            row.seen, row.pending = 0, row.context[-window:] if window else list(row.context)
        return model.new_state(len(rows), max_len, device=device, dtype=dtype)
    full = [max_len and row.seen + len(row.pending) > max_len for row in rows]
    if any(full):
        for row, overflow in zip(rows, full):
            if overflow:
                row.seen, row.pending = 0, row.context[-(max_len // 2):]
        state = model.truncate(state, [row.seen for row in rows])
    return state


def _finish_row(row: _Row, token: int, eos_id: int | None, watch_text: bool) -> None:
    if token == eos_id:
        row.reason = "eos"
        return
    row.context.append(token)
    row.new_ids.append(token)
    row.pending = [token]
    if watch_text and row.stream.push(row.new_ids):
        row.reason = "stop_string"
    elif len(row.new_ids) >= row.limit:
        row.reason = "length"


@torch.inference_mode()
def generate_batch(model: Decoder, prompts: list[list[int]], *, max_new_tokens: int | list[int],
                   sampling: SamplingConfig, seeds: list[int | None], eos_id: int | None,
                   decode: Callable[[list[int]], str], stop_strings: list[str] = (),
                   on_text: list[Callable[[str], None] | None] | None = None, use_cache: bool = True,
                   memory: Any = None, no_repeat_ngram: int = 0) -> list[Generation]:
    """Up to `max_new_tokens` (one limit, or one per row) after each prompt, all rows decoded together; row b
    samples with a generator seeded by seeds[b] and streams its text to on_text[b]. An encoder-decoder model
    reads the rows' encoded sources from `memory`; `no_repeat_ngram` n > 0 never repeats an n-gram."""
    device, dtype = _device_and_dtype(model)
    callbacks = on_text or [None] * len(prompts)
    limits = max_new_tokens if isinstance(max_new_tokens, list) else [max_new_tokens] * len(prompts)
    rows = [_Row(start_context(p, model.max_context, eos_id), seeded_generator(seed),
                 TextStream(decode, list(stop_strings), callback), limit)
            for p, seed, callback, limit in zip(prompts, seeds, callbacks, limits)]
    if max(limits, default=0) <= 0:
        return [Generation("", [], "length") for _ in rows]
    if memory is not None and not use_cache:
        raise ValueError("an encoder-decoder model decodes with its cache")
    watch_text = bool(stop_strings) or any(callbacks)
    state = model.new_state(len(rows), _capacity(model, rows, max(limits)), device=device, dtype=dtype,
                            **({"memory": memory} if memory is not None else {}))
    active = [row for row in rows if row.limit > 0]
    if len(active) < len(rows):
        state = model.reorder(state, torch.tensor([i for i, row in enumerate(rows) if row.limit > 0], device=device))
    while active:
        state = _refill(model, active, state, use_cache, device, dtype)
        tokens, positions = left_padded([r.pending for r in active], [r.seen for r in active], device)
        logits, state = model.step(tokens, positions, state, keep_last=1)          # (B, 1, V)
        for row in active:
            row.seen += len(row.pending)
        histories = [torch.tensor(r.context) for r in active] if sampling.repetition_penalty != 1.0 else None
        last = logits[:, -1].cpu()
        if no_repeat_ngram:
            last = ban_repeated_ngrams(last, [r.context for r in active], no_repeat_ngram)
        chosen = sample_rows(last, histories, sampling, [r.generator for r in active])
        for row, token in zip(active, chosen):
            _finish_row(row, token, eos_id, watch_text)
        going = [i for i, row in enumerate(active) if row.reason is None]
        if len(going) < len(active) and going:
            state = model.reorder(state, torch.tensor(going, device=device))
        active = [active[i] for i in going]
    return [Generation(row.stream.finish(row.new_ids), row.new_ids, row.reason or "length") for row in rows]


def generate(model: Decoder, prompt_ids: list[int], *, max_new_tokens: int, sampling: SamplingConfig,
             seed: int | None, eos_id: int | None, decode: Callable[[list[int]], str],
             stop_strings: list[str] = (), on_text: Callable[[str], None] | None = None,
             use_cache: bool = True) -> Generation:
    """Up to `max_new_tokens` after `prompt_ids` (a batch of one). Without the cache every step
    re-reads the whole (recent) context from a fresh state: slow, but a check of the cached path."""
    return generate_batch(model, [prompt_ids], max_new_tokens=max_new_tokens, sampling=sampling, seeds=[seed],
                          eos_id=eos_id, decode=decode, stop_strings=stop_strings, on_text=[on_text],
                          use_cache=use_cache)[0]
