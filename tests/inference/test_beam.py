"""Beam search: equal to Hugging Face `generate(num_beams=K)` on a Llama with our weights copied in
(tokens and scores, with EOS and length limits), through every decoder family, and its rules."""

from __future__ import annotations

import pytest
import torch
from test_decoding import FAMILIES, decode, decoder, prompts_of

from lmforge.errors import InputError
from lmforge.inference.beam import beam_search
from lmforge.inference.decoding import generate
from lmforge.inference.sampling import SamplingConfig
from lmforge.models.convert import llama_config, to_llama
from lmforge.models.gpt import GPT, GPTConfig

PROMPTS = [[5, 9, 2, 7, 7, 1], [11], [3, 3, 8, 14, 20, 6, 2, 9, 30]]


def gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=60, max_seq_len=64, n_layers=2, n_heads=4, n_kv_heads=2, d_model=32)).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(6)
    return model


def hf_beams(model: GPT, prompts, beams: int, new: int, eos: int | None, n_best: int = 1, length_penalty=1.0,
             early_stopping=False):
    """HF generate on the same prompts, left-padded as HF asks of decoder-only models."""
    transformers = pytest.importorskip("transformers")
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**llama_config(model.config))).eval()
    hf.load_state_dict(to_llama(model))
    width = max(map(len, prompts))
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):], mask[row, width - len(p):] = torch.tensor(p), 1
    with torch.no_grad():
        out = hf.generate(ids, attention_mask=mask, num_beams=beams, num_return_sequences=n_best, do_sample=False,
                          max_new_tokens=new, eos_token_id=eos, pad_token_id=0, length_penalty=length_penalty,
                          early_stopping=early_stopping,
                          output_scores=True, return_dict_in_generate=True)
    rows = out.sequences[:, width:].tolist()
    rows = [r[:r.index(eos)] if eos is not None and eos in r else r for r in rows]   # ours leave EOS out
    return rows, out.sequences_scores.tolist()


@pytest.mark.parametrize("eos", [None, "frequent"])
@pytest.mark.parametrize("length_penalty", [1.0, 0.0])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_beam_search_equals_hugging_face_on_copied_weights(eos, length_penalty, early_stopping):
    model = gpt()
    if eos == "frequent":   # a token the best beams hold early, so that hypotheses end at different lengths
        eos = _early_token(model)
    ours = beam_search(model, PROMPTS, beams=4, max_new_tokens=16, eos_id=eos, decode=decode, n_best=2,
                       length_penalty=length_penalty, early_stopping=early_stopping)
    theirs, scores = hf_beams(model, PROMPTS, 4, 16, eos, n_best=2, length_penalty=length_penalty,
                              early_stopping=early_stopping)
    assert [h.token_ids for hyps in ours for h in hyps] == theirs
    assert [h.score for hyps in ours for h in hyps] == pytest.approx(scores, abs=1e-4)
    if eos is not None:
        assert {h.stop_reason for hyps in ours for h in hyps} >= {"eos"}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_decoder_beam_searches_and_one_beam_is_greedy(family):
    model, prompts = decoder(family), [p for p in prompts_of(family) if p]
    found = beam_search(model, prompts, beams=3, max_new_tokens=10, eos_id=None, decode=decode, n_best=3)
    for prompt, hypotheses in zip(prompts, found):
        assert len(hypotheses) == 3 and all(len(h.token_ids) == 10 for h in hypotheses)
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        greedy = generate(model, prompt, max_new_tokens=10, sampling=SamplingConfig(temperature=0), seed=0,
                          eos_id=None, decode=decode)
        assert hypotheses[0].logprob >= _logprob(model, prompt, greedy.token_ids) - 1e-4   # never worse than greedy
        one = beam_search(model, [prompt], beams=1, max_new_tokens=10, eos_id=None, decode=decode)[0][0]
        assert one.token_ids == greedy.token_ids


@torch.no_grad()
def _logprob(model, prompt, tokens) -> float:
    """Summed log-probability of `tokens` after `prompt`, token by token through the protocol."""
    logits, state = model.step(torch.tensor([prompt]), torch.arange(len(prompt))[None], model.new_state(1, 64),
                               keep_last=1)
    total = 0.0
    for i, token in enumerate(tokens):
        total += float(logits[0, -1].float().log_softmax(-1)[token])
        logits, state = model.step(torch.tensor([[token]]), torch.tensor([[len(prompt) + i]]), state, keep_last=1)
    return total


def _early_token(model) -> int:
    return beam_search(model, PROMPTS[:1], beams=4, max_new_tokens=8, eos_id=None, decode=decode)[0][0].token_ids[2]


def test_a_length_penalty_favours_longer_hypotheses():
    model = gpt()
    eos = _early_token(model)
    short = beam_search(model, PROMPTS, beams=4, max_new_tokens=16, eos_id=eos, decode=decode, length_penalty=-1.0)
    long = beam_search(model, PROMPTS, beams=4, max_new_tokens=16, eos_id=eos, decode=decode, length_penalty=2.0)
    assert sum(len(h[0].token_ids) for h in long) > sum(len(h[0].token_ids) for h in short)


def test_bad_beam_settings_are_input_errors():
    model = gpt()
    with pytest.raises(InputError, match="--n-best"):
        beam_search(model, PROMPTS, beams=2, max_new_tokens=4, eos_id=None, decode=decode, n_best=3)
    with pytest.raises(InputError, match="--beam 0"):
        beam_search(model, PROMPTS, beams=0, max_new_tokens=4, eos_id=None, decode=decode)
    with pytest.raises(InputError, match="fewer than 64"):
        beam_search(model, PROMPTS, beams=2, max_new_tokens=64, eos_id=None, decode=decode)


def test_early_stopping_ends_a_search_once_it_holds_k_hypotheses():
    model, calls = gpt(), []
    eos, step = _early_token(model), model.step
    model.step = lambda tokens, *args, **kwargs: calls.append(len(tokens)) or step(tokens, *args, **kwargs)
    rows = {}   # beam rows decoded: a prompt that is done leaves the batch
    for early in (False, True):
        calls.clear()
        found = beam_search(model, PROMPTS, beams=4, max_new_tokens=16, eos_id=eos, decode=decode, n_best=4,
                            early_stopping=early)
        assert all(len(hyps) == 4 for hyps in found)
        rows[early] = sum(calls)
    assert rows[True] < rows[False]
