"""Autoregressive generation through the decoder protocol, with stop strings and streaming.

A decoder has `new_state(batch_size, device, dtype)`, `step(tokens, state) -> (logits, state)` and
`max_context` (None when any length fits): the GPT's KV cache and a recurrent hidden state are two
implementations of the state, and this file knows neither."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lmforge.inference.sampling import SamplingConfig, sample_next


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    stop_reason: str  # "eos", "stop_string" or "length"


class _Stream:
    """Decodes the growing token list and hands out only the new, complete text."""

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


@torch.inference_mode()
def generate(model: nn.Module, prompt_ids: list[int], *, max_new_tokens: int, sampling: SamplingConfig,
             seed: int | None, eos_id: int | None, decode: Callable[[list[int]], str],
             stop_strings: list[str] = (), on_text: Callable[[str], None] | None = None,
             use_cache: bool = True) -> Generation:
    """Generate up to `max_new_tokens` after `prompt_ids` (batch of one). Without the cache every step
    re-reads the whole (recent) context from a fresh state: slow, but a check of the cached path."""
    param = next(model.parameters(), torch.zeros(0))   # a counting model (n-gram) has no parameters
    max_len = model.max_context
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed if seed is not None else torch.seed())
    context = list(prompt_ids)[-(max_len - 1):] if max_len else list(prompt_ids)
    context = context or [eos_id if eos_id is not None else 0]
    state = model.new_state(1, device=param.device, dtype=param.dtype)
    seen, pending = 0, context               # tokens in the state; tokens the model has not read yet
    new_ids: list[int] = []
    stream = _Stream(decode, list(stop_strings), on_text)
    reason = "length"
    for _ in range(max_new_tokens):
        if not use_cache or (max_len and seen + len(pending) > max_len):
            # a fresh state re-reads the context: all of it without the cache, its recent half when full
            window = (max_len if not use_cache else max_len // 2) if max_len else len(context)
            state, seen, pending = model.new_state(1, device=param.device, dtype=param.dtype), 0, context[-window:]
        logits, state = model.step(torch.tensor([pending], device=param.device), state)   # (1, T, V)
        seen += len(pending)
        # the context tensor is only needed for the repetition penalty
        history = torch.tensor(context) if sampling.repetition_penalty != 1.0 else None
        token = sample_next(logits[0, -1].cpu(), history, sampling, generator)
        if token == eos_id:
            reason = "eos"
            break
        context.append(token)
        new_ids.append(token)
        pending = [token]
        if (on_text or stop_strings) and stream.push(new_ids):
            reason = "stop_string"
            break
    return Generation(stream.finish(new_ids), new_ids, reason)
