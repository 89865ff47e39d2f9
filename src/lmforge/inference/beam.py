"""Beam search through the decoder protocol, for any decoder and a batch of prompts.

The rule is the one Hugging Face `generate(num_beams=K)` follows, so the two agree token for token on
the same weights: each step keeps the 2K best continuations of a prompt's K beams by summed
log-probability; those ending in EOS (or at the length limit) among the best K become finished
hypotheses, scored by summed log-probability / generated_length ** length_penalty; the best K
unfinished ones go on. A prompt is done when it holds K finished hypotheses and its best running
beam, scored at the current length, can no longer beat the worst of them (HF's early_stopping=False);
with `early_stopping` it is done as soon as it holds K (HF's early_stopping=True, fairseq's rule), which
saves the steps spent on beams that rarely win. Every prompt's beams are rows of one batch; a step is a
few tensor operations over all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lmforge.errors import InputError
from lmforge.inference.decoding import Decoder, _device_and_dtype, left_padded, start_context
from lmforge.inference.sampling import ban_repeated_ngrams

FINISHED = -1.0e9   # the score that keeps a candidate out (as HF)


@dataclass
class Hypothesis:
    token_ids: list[int]
    text: str
    score: float
    """Summed log-probability divided by the generated length ** length_penalty (what beams are ranked by)."""
    logprob: float
    """Summed natural log-probability of the generated tokens (EOS included when it ended the text)."""
    stop_reason: str   # "eos" or "length"


@dataclass
class _Search:
    """The beams of the prompts still searching (P of them): running tokens and scores, and every prompt's
    finished hypotheses (score, log-probability, token ids, reason), best first."""

    live: list[int]                 # prompt numbers, in row order
    tokens: Tensor                  # (P, K, t) generated tokens of the running beams
    scores: Tensor                  # (P, K) their summed log-probabilities
    finished: list[list[tuple[float, float, list[int], str]]] = field(default_factory=list)


def _check(model: Decoder, prompts: list[list[int]], beams: int, n_best: int, max_new_tokens: int,
           eos_id: int | None) -> list[list[int]]:
    """The contexts the beams start from; `max_new_tokens` is the longest limit of any prompt."""
    if beams < 1 or not 1 <= n_best <= beams:
        raise InputError(f"--beam {beams} --n-best {n_best}: the beam must be at least 1 and --n-best between 1 "
                         "and the beam.")
    limit = model.max_context
    if limit and max_new_tokens >= limit:
        raise InputError(f"--max-new-tokens {max_new_tokens}: beam search keeps every beam in the model's context of "
                         f"{limit} tokens; ask for fewer than {limit} new tokens.")
    room = limit - max_new_tokens if limit else None
    return [start_context(p, room + 1 if room else None, eos_id) for p in prompts]


def _finish(search: _Search, slot: int, ranks: list[int], scores: Tensor, origin: Tensor, chosen: Tensor,
            eos: Tensor, length: int, beams: int, length_penalty: float) -> None:
    """The best-K candidates of prompt `slot` that end become finished hypotheses (the best K are kept)."""
    done = search.finished[search.live[slot]]
    for rank in ranks:
        ids = search.tokens[slot, origin[slot, rank]].tolist() + [int(chosen[slot, rank])]
        total = float(scores[slot, rank])
        done.append((total / length ** length_penalty, total, ids, "eos" if eos[slot, rank] else "length"))
    done.sort(key=lambda h: -h[0])
    del done[beams:]


def _step(search: _Search, log_probs: Tensor, length: int, beams: int, at_limit: Tensor, eos_id: int | None,
          length_penalty: float) -> Tensor:
    """One step of every prompt's search on (P * K, V) log-probabilities, `at_limit` (P, 1) marking the prompts
    whose candidates must end now; the rows (beams) that go on."""
    P, vocab = len(search.live), log_probs.size(-1)
    total = (log_probs.view(P, beams, vocab) + search.scores[:, :, None]).view(P, beams * vocab)
    scores, flat = total.topk(2 * beams, dim=1)                                   # (P, 2K), best first
    origin, chosen = flat // vocab, flat % vocab
    eos = chosen == eos_id if eos_id is not None else torch.zeros_like(chosen, dtype=torch.bool)
    ends = eos | at_limit
    for slot, rank in ends[:, :beams].nonzero().tolist() if ends[:, :beams].any() else []:
        _finish(search, slot, [rank], scores, origin, chosen, eos, length, beams, length_penalty)
    open_scores = scores + ends.float() * FINISHED
    going = open_scores.topk(beams, dim=1).indices                                # (P, K)
    parent = origin.gather(1, going)                                              # (P, K): the beam each continues
    kept = search.tokens.gather(1, parent[:, :, None].expand(-1, -1, search.tokens.size(2)))
    search.tokens = torch.cat([kept, chosen.gather(1, going)[:, :, None]], dim=2)
    search.scores = open_scores.gather(1, going)
    return (torch.arange(P)[:, None] * beams + parent).flatten()


def _improvable(search: _Search, length: int, beams: int, length_penalty: float, early_stopping: bool) -> list[bool]:
    """Per live prompt: go on while fewer than K hypotheses are finished, or (HF's heuristic for
    early_stopping=False) while the best running beam scored at the current length beats the worst finished one."""
    best = (search.scores[:, 0] / length ** length_penalty).tolist()
    out = []
    for slot, number in enumerate(search.live):
        done = search.finished[number]
        out.append(len(done) < beams or (not early_stopping and best[slot] > done[-1][0]))
    return out


@torch.inference_mode()
def beam_search(model: Decoder, prompts: list[list[int]], *, beams: int, max_new_tokens: int | list[int],
                eos_id: int | None, decode: Callable[[list[int]], str], length_penalty: float = 1.0, n_best: int = 1,
                stop_strings: list[str] = (), memory=None, no_repeat_ngram: int = 0,
                early_stopping: bool = False) -> list[list[Hypothesis]]:
    """The `n_best` best hypotheses of each prompt, best first, with at most `max_new_tokens` new tokens (one
    limit, or one per prompt). A prompt keeps its last max_context - max_new_tokens tokens, so every beam fits
    the model's context. An encoder-decoder model reads the prompts' encoded sources from `memory`;
    `no_repeat_ngram` n > 0 never repeats an n-gram within a beam; `early_stopping` ends a prompt's search once
    it holds K finished hypotheses."""
    limits = max_new_tokens if isinstance(max_new_tokens, list) else [max_new_tokens] * len(prompts)
    longest_limit = max(limits)
    contexts = _check(model, prompts, beams, n_best, longest_limit, eos_id)
    device, dtype = _device_and_dtype(model)
    longest = max(len(c) for c in contexts) + longest_limit   # the cache need hold no more
    state = model.new_state(len(contexts), longest, device=device, dtype=dtype,
                            **({"memory": memory} if memory is not None else {}))
    logits, state = model.step(*left_padded(contexts, [0] * len(contexts), device), state, keep_last=1)
    state = model.reorder(state, torch.arange(len(contexts), device=device).repeat_interleave(beams))
    log_probs = logits[:, -1].float().cpu().log_softmax(-1).repeat_interleave(beams, dim=0)   # (P * K, V)
    first = torch.full((len(contexts), beams), FINISHED)
    first[:, 0] = 0.0   # every beam starts as the prompt: only one of them may expand at the first step
    search = _Search(list(range(len(contexts))), torch.zeros((len(contexts), beams, 0), dtype=torch.long), first,
                     [[] for _ in contexts])
    for length in range(1, longest_limit + 1):
        if no_repeat_ngram:
            histories = [contexts[n] + search.tokens[slot, k].tolist() for slot, n in enumerate(search.live)
                         for k in range(beams)]
            log_probs = ban_repeated_ngrams(log_probs, histories, no_repeat_ngram)
        at_limit = torch.tensor([[length >= limits[n]] for n in search.live])
        rows = _step(search, log_probs, length, beams, at_limit, eos_id, length_penalty)
        going = _improvable(search, length, beams, length_penalty, early_stopping)
        if length == longest_limit or not any(going):
            break
        if not all(going):   # prompts that cannot improve leave the batch
            keep = [slot for slot, on in enumerate(going) if on]
            rows = rows.view(len(going), beams)[keep].flatten()
            search.live, search.tokens, search.scores = [search.live[s] for s in keep], search.tokens[keep], \
                search.scores[keep]
        state = model.reorder(state, rows.to(device))
        positions = torch.tensor([len(contexts[n]) + length - 1 for n in search.live], device=device)
        logits, state = model.step(search.tokens[:, :, -1].reshape(-1, 1).to(device),
                                   positions.repeat_interleave(beams)[:, None], state, keep_last=1)
        log_probs = logits[:, -1].float().cpu().log_softmax(-1)
    return [_hypotheses(done, n_best, eos_id, decode, list(stop_strings)) for done in search.finished]


def _hypotheses(finished, n_best: int, eos_id: int | None, decode, stops: list[str]) -> list[Hypothesis]:
    out = []
    for score, logprob, ids, reason in finished[:n_best]:
        kept = ids[:-1] if reason == "eos" and ids and ids[-1] == eos_id else ids
        text = decode(kept)
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        out.append(Hypothesis(kept, text if cut < 0 else text[:cut], score, logprob, reason))
    return out
