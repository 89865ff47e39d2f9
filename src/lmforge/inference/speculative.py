"""Speculative decoding through the decoder protocol: a drafter proposes k tokens, the target model
scores them all in one forward pass, the accepted prefix is kept and the rest is cut from its state.

Acceptance follows the standard rejection rule (Leviathan et al. 2023; Chen et al. 2023): a drafted
token x is kept with probability min(1, p(x) / q(x)); at the first rejection the token is drawn from
max(0, p - q) renormalised, and when all k are kept one more is drawn from p. So the output has the
target's distribution exactly (and equals greedy decoding when the temperature is 0). Drafters:
- `ModelDrafter`: a smaller run of the same tokenizer (q is its sampling distribution);
- `PromptLookupDrafter`: the continuation of the latest earlier match of the context's last n-gram
  (q is one-hot: a deterministic guess), no second model at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lmforge.inference.decoding import Generation, TextStream, start_context
from lmforge.inference.sampling import SamplingConfig, next_token_probs, seeded_generator


@dataclass
class SpeculativeStats:
    drafted: int = 0
    accepted: int = 0
    target_passes: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / max(self.drafted, 1)


class PromptLookupDrafter:
    """Guess the next k tokens by finding the context's last `ngram` tokens earlier in the context."""

    def __init__(self, ngram: int = 3, k: int = 5):
        self.ngram, self.k = ngram, k

    def propose(self, context: list[int], sampling, generator) -> tuple[list[int], list[Tensor] | None]:
        for n in range(min(self.ngram, len(context) - 1), 0, -1):
            tail = context[-n:]
            for start in range(len(context) - n - 1, -1, -1):   # the latest earlier occurrence
                if context[start:start + n] == tail:
                    guess = context[start + n:start + n + self.k]
                    if guess:
                        return guess, None                      # None: q is one-hot on each guess
        return [], None

    def accept(self, context: list[int]) -> None:
        pass


class ModelDrafter:
    """A small decoder (same tokenizer) samples k tokens from its own distribution q, autoregressively."""

    def __init__(self, model: nn.Module, k: int = 4):
        self.model, self.k = model, k
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.state, self.seen = model.new_state(1, device=self.device, dtype=self.dtype), []

    def _sync(self, context: list[int]) -> Tensor:
        """Bring the draft state up to `context` (minus its last token); return the last token's logits."""
        common = 0
        while common < min(len(self.seen), len(context) - 1) and self.seen[common] == context[common]:
            common += 1
        limit = self.model.max_context
        if limit and len(context) + self.k > limit:            # too long for the drafter: start over on the tail
            common, self.state = 0, self.model.new_state(1, device=self.device, dtype=self.dtype)
            context = context[-(limit // 2):]
        self.state = self.model.truncate(self.state, [common])
        logits, self.state = self.model.step(*_row(context[common:], common, self.device), self.state, keep_last=1)
        self.seen = list(context)
        return logits[0, -1]

    @torch.inference_mode()
    def propose(self, context: list[int], sampling: SamplingConfig, generator) -> tuple[list[int], list[Tensor]]:
        logits = self._sync(context)
        tokens, probs = [], []
        for i in range(self.k):
            q = next_token_probs(logits.cpu(), None, sampling)
            token = int(torch.multinomial(q, 1, generator=generator)) if sampling.temperature else int(q.argmax())
            tokens.append(token)
            probs.append(q)
            if i + 1 < self.k:
                logits, self.state = self.model.step(*_row([token], len(self.seen), self.device), self.state)
                logits = logits[0, -1]
                self.seen.append(token)
        return tokens, probs


def _row(tokens: list[int], start: int, device) -> tuple[Tensor, Tensor]:
    """(tokens, positions) of one row of new tokens from position `start` on."""
    return (torch.tensor([tokens], device=device),
            torch.arange(start, start + len(tokens), device=device)[None])


def _verify(p: Tensor, token: int, q: Tensor | None, generator) -> int | None:
    """None when `token` is accepted under target p and draft q; else the replacement token."""
    q_x = 1.0 if q is None else float(q[token])
    if torch.rand(1, generator=generator).item() * q_x < float(p[token]):
        return None
    residual = p.clone() if q is None else (p - q).clamp_min(0)
    if q is None:
        residual[token] = 0.0
    if residual.sum() <= 0:   # p and q agree everywhere except on mass q put on `token`: p itself
        residual = p
    return int(torch.multinomial(residual / residual.sum(), 1, generator=generator))


def _accept(logits: Tensor, draft: list[int], q, context: list[int], sampling: SamplingConfig, generator,
            eos_id: int | None) -> tuple[list[int], int]:
    """(tokens to append, drafts kept): the kept drafts, then the replacement at the first rejection
    or, when all are kept, one more token from the target's last row."""
    accepted = []
    for i in range(len(draft) + 1):
        history = torch.tensor(context + accepted) if sampling.repetition_penalty != 1.0 else None
        p = next_token_probs(logits[i], history, sampling)                # (V,)
        if i == len(draft):
            token = int(torch.multinomial(p, 1, generator=generator)) if sampling.temperature else int(p.argmax())
            return accepted + [token], len(draft)
        replacement = _verify(p, draft[i], None if q is None else q[i], generator)
        if replacement is not None:
            return accepted + [replacement], i
        accepted.append(draft[i])
        if draft[i] == eos_id:
            return accepted, i + 1
    raise AssertionError("unreachable")


@torch.inference_mode()
def generate_speculative(model: nn.Module, prompt_ids: list[int], drafter, *, max_new_tokens: int,
                         sampling: SamplingConfig, seed: int | None, eos_id: int | None,
                         decode: Callable[[list[int]], str], stop_strings: list[str] = (),
                         on_text: Callable[[str], None] | None = None) -> tuple[Generation, SpeculativeStats]:
    """Like `generate`, with drafted tokens verified k at a time through the decoder protocol (`truncate`
    cuts the rejected ones from the target's state)."""
    param = next(model.parameters())
    max_len = model.max_context
    generator = seeded_generator(seed)
    context = start_context(prompt_ids, max_len, eos_id)
    state, seen = model.new_state(1, device=param.device, dtype=param.dtype), 0
    new_ids: list[int] = []
    stats, stream, reason = SpeculativeStats(), TextStream(decode, list(stop_strings), on_text), "length"
    while len(new_ids) < max_new_tokens and reason == "length":
        draft, q = drafter.propose(context, sampling, generator)
        draft = draft[:max(0, min(max_new_tokens - len(new_ids) - 1, max_len - len(context) - 1))]
        if len(context) >= max_len:   # the state is full: re-read the recent half
            state, seen, context, draft = model.new_state(1, device=param.device, dtype=param.dtype), 0, \
                context[-(max_len // 2):], []
        pending = context[seen:] + draft
        logits, state = model.step(*_row(pending, seen, param.device), state, keep_last=len(draft) + 1)
        logits = logits[0].float().cpu()                                                     # (k + 1, V)
        accepted, kept = _accept(logits, draft, q, context, sampling, generator, eos_id)
        stats.target_passes += 1
        stats.drafted += len(draft)
        stats.accepted += kept
        seen = len(context) + kept   # the state holds the context and the kept drafts; the rest is cut
        state = model.truncate(state, [seen])
        reason = _append(accepted, context, new_ids, stream, eos_id, max_new_tokens, bool(on_text or stop_strings))
    return Generation(stream.finish(new_ids), new_ids, reason), stats


def _append(accepted: list[int], context: list[int], new_ids: list[int], stream: TextStream, eos_id: int | None,
            max_new_tokens: int, watch_text: bool) -> str:
    """Take the verified tokens until EOS, a stop string or the length limit; the reason decoding goes on or ends."""
    for token in accepted:
        if token == eos_id:
            return "eos"
        context.append(token)
        new_ids.append(token)
        if watch_text and stream.push(new_ids):
            return "stop_string"
        if len(new_ids) >= max_new_tokens:
            break
    return "length"
