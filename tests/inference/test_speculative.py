"""Speculative decoding: greedy output equal to plain decoding, the target's distribution when sampling,
the cache cut back on rejection, and prompt-lookup drafting."""

import pytest
import torch

from lmforge.inference.decoding import generate
from lmforge.inference.sampling import SamplingConfig
from lmforge.inference.speculative import ModelDrafter, PromptLookupDrafter, generate_speculative
from lmforge.models.gpt import GPT, GPTConfig


def gpt(seed: int, vocab: int = 50, sharpen: float = 20.0, max_seq_len: int = 40) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, max_seq_len=max_seq_len, n_layers=2, n_heads=2, d_model=32)).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpen)
    return model


def decode(ids):
    return "".join(chr(97 + i % 26) for i in ids)


GREEDY = SamplingConfig(temperature=0)


def perturbed(model: GPT, scale: float, seed: int = 3) -> GPT:
    """A drafter that agrees with the target most of the time: its weights plus a little noise."""
    import copy

    torch.manual_seed(seed)
    draft = copy.deepcopy(model)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(scale * p.std() * torch.randn_like(p))
    return draft


@pytest.mark.parametrize("drafter", ["model", "lookup"])
def test_greedy_speculative_decoding_equals_plain_greedy_decoding(drafter):
    target = gpt(0, max_seq_len=96)
    draft = ModelDrafter(perturbed(target, 0.3), k=4) if drafter == "model" else PromptLookupDrafter(ngram=2, k=5)
    prompt = [3, 4, 5, 3, 4, 5, 3, 4]
    plain = generate(target, prompt, max_new_tokens=60, sampling=GREEDY, seed=0, eos_id=None, decode=decode)
    fast, stats = generate_speculative(target, prompt, draft, max_new_tokens=60, sampling=GREEDY, seed=0,
                                       eos_id=None, decode=decode)
    assert fast.token_ids == plain.token_ids and len(fast.token_ids) == 60   # every token
    assert stats.drafted > 0 and stats.accepted > 0 and stats.target_passes < 60   # drafts were right and saved passes


def test_speculative_decoding_rereads_a_full_state_as_plain_decoding_does_until_then():
    """At max_seq_len both re-read their recent context, at steps of their own (k tokens a pass): the texts
    agree up to the first re-read (32 new tokens after 8 fill 40) and both keep going to the length asked."""
    target = gpt(0)
    prompt = [3, 4, 5, 3, 4, 5, 3, 4]
    plain = generate(target, prompt, max_new_tokens=60, sampling=GREEDY, seed=0, eos_id=None, decode=decode)
    fast, _ = generate_speculative(target, prompt, ModelDrafter(perturbed(target, 0.3), k=4), max_new_tokens=60,
                                   sampling=GREEDY, seed=0, eos_id=None, decode=decode)
    assert fast.token_ids[:32] == plain.token_ids[:32] and len(fast.token_ids) == len(plain.token_ids) == 60


def test_a_draft_that_is_the_target_itself_is_always_accepted():
    target = gpt(0)
    _, stats = generate_speculative(target, [1, 2, 3], ModelDrafter(gpt(0), k=4), max_new_tokens=20,
                                    sampling=GREEDY, seed=0, eos_id=None, decode=decode)
    assert stats.acceptance == 1.0 and stats.target_passes == 4  # 4 drafts + 1 bonus per pass


def exact_two_token_marginals(model, prompt, sampling):
    """p(t1) and p(t2) = sum over t1 of p(t1) p(t2 | t1), from the model directly."""
    with torch.no_grad():
        p1 = torch.softmax(model(torch.tensor([prompt]))[0, -1] / sampling.temperature, -1)
        rows = torch.tensor([prompt + [t] for t in range(p1.numel())])
        p2 = (p1[:, None] * torch.softmax(model(rows)[:, -1] / sampling.temperature, -1)).sum(0)
    return p1, p2


@pytest.mark.parametrize("drafter", ["model", "lookup"])
def test_sampling_keeps_the_target_distribution(drafter):
    target = gpt(0, vocab=6, sharpen=1.5)
    sampling = SamplingConfig(temperature=1.0, top_p=None)
    prompt = [1, 2, 1, 2, 1]
    p1, p2 = exact_two_token_marginals(target, prompt, sampling)
    counts1, counts2 = torch.zeros(6), torch.zeros(6)
    n = 1500
    for seed in range(n):
        draft = ModelDrafter(gpt(5, vocab=6, sharpen=3.0), k=3) if drafter == "model" \
            else PromptLookupDrafter(ngram=2, k=3)
        out, _ = generate_speculative(target, prompt, draft, max_new_tokens=2, sampling=sampling, seed=seed,
                                      eos_id=None, decode=decode)
        counts1[out.token_ids[0]] += 1
        counts2[out.token_ids[1]] += 1
    tolerance = 4 * torch.sqrt(p1 * (1 - p1) / n) + 0.005
    assert ((counts1 / n - p1).abs() <= tolerance).all(), (counts1 / n, p1)
    tolerance = 4 * torch.sqrt(p2 * (1 - p2) / n) + 0.005
    assert ((counts2 / n - p2).abs() <= tolerance).all(), (counts2 / n, p2)


def test_prompt_lookup_proposes_the_continuation_of_the_latest_match():
    lookup = PromptLookupDrafter(ngram=2, k=3)
    assert lookup.propose([7, 8, 9, 1, 7, 8, 5, 6, 2, 7, 8], GREEDY, None)[0] == [5, 6, 2]
    assert lookup.propose([1, 2, 3], GREEDY, None)[0] == []
