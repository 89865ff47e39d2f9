"""The decoder protocol, checked the same way on every decoder family (GPT, LSTM, GRU, Elman RNN, n-gram):
a batch decodes each row as it decodes alone, per-row seeds make a row's sample independent of the
batch, chunks and left padding read the same as one pass, reorder moves rows, truncate forgets tokens."""

from __future__ import annotations

import pytest
import torch

from lmforge.inference.decoding import Decoder, generate, generate_batch, left_padded
from lmforge.inference.ngram_decoder import NgramDecoder
from lmforge.inference.sampling import SamplingConfig
from lmforge.models.gpt import GPT, GPTConfig
from lmforge.models.rnn import RNNLM, RNNConfig

VOCAB = 40
FAMILIES = ["gpt", "lstm", "gru", "rnn", "ngram"]
GREEDY = SamplingConfig(temperature=0)
SAMPLED = SamplingConfig(temperature=1.0, top_k=20, top_p=0.9, repetition_penalty=1.2)


class _NgramRun:
    def __init__(self, model):
        self.model = model


def _ngram():
    """A trigram model of a small random corpus; ids are its vocabulary's (0-3 are <unk> <s> </s> ...)."""
    import random

    from lmforge.ngram.counting import count_corpus
    from lmforge.ngram.estimate import estimate
    from lmforge.ngram.model import NgramModel
    from lmforge.tokenization.words import WordSplitter

    rng = random.Random(0)
    words = [f"w{i}" for i in range(30)]
    lines = [" ".join(rng.choice(words[:rng.randint(5, 30)]) for _ in range(rng.randint(3, 12))) for _ in range(400)]
    return NgramDecoder(_NgramRun(NgramModel(estimate(count_corpus(lines, WordSplitter("whitespace"), 3)))))


def decoder(family: str):
    torch.manual_seed(0)
    if family == "ngram":
        return _ngram()
    if family == "gpt":
        model = GPT(GPTConfig(vocab_size=VOCAB, max_seq_len=48, n_layers=2, n_heads=4, n_kv_heads=2, d_model=32))
    else:
        model = RNNLM(RNNConfig(vocab_size=VOCAB, cell=family, d_model=32, n_layers=2, dropout=0.0,
                                tie_embeddings=False))
    with torch.no_grad():   # sharpen the outputs: samples then have structure, and near-ties are rare
        model.lm_head.weight.mul_(8)
    return model.eval()


def prompts_of(family: str) -> list[list[int]]:
    low = 3 if family == "ngram" else 1   # an n-gram's first ids are <unk> <s> </s>
    return [[low + 2, low + 5, low + 1, low + 9], [low + 7], [low + i % 20 for i in range(11)], []]


def decode(ids):
    return " ".join(map(str, ids))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("sampling", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_a_batch_decodes_each_row_as_it_decodes_alone(family, sampling):
    model, prompts = decoder(family), prompts_of(family)
    seeds = [11, 12, 13, 14]
    # 40 new tokens after 11 overflow the GPT's 48 positions: that row re-reads its context mid-batch
    batched = generate_batch(model, prompts, max_new_tokens=40, sampling=sampling, seeds=seeds, eos_id=None,
                             decode=decode)
    for prompt, seed, row in zip(prompts, seeds, batched):
        alone = generate(model, prompt, max_new_tokens=40, sampling=sampling, seed=seed, eos_id=None, decode=decode)
        assert row.token_ids == alone.token_ids and row.text == alone.text


@pytest.mark.parametrize("family", FAMILIES)
def test_a_seeded_row_gives_the_same_text_whatever_shares_its_batch(family):
    model, prompts = decoder(family), prompts_of(family)
    mine = generate_batch(model, [prompts[0]], max_new_tokens=20, sampling=SAMPLED, seeds=[5], eos_id=None,
                          decode=decode)[0]
    crowded = generate_batch(model, [prompts[2], prompts[0], prompts[1]], max_new_tokens=20, sampling=SAMPLED,
                             seeds=[1, 5, 2], eos_id=None, decode=decode)[1]
    again = generate_batch(model, [prompts[0]] * 3, max_new_tokens=20, sampling=SAMPLED, seeds=[9, 8, 5],
                           eos_id=None, decode=decode)
    assert crowded.token_ids == mine.token_ids == again[2].token_ids
    assert again[0].token_ids != mine.token_ids   # the seed, not the prompt alone, decides a sample


def _last_logits(model, rows: list[list[int]], state=None, starts=None):
    starts = starts or [0] * len(rows)
    state = state if state is not None else model.new_state(len(rows), 48)
    logits, state = model.step(*left_padded(rows, starts, "cpu"), state, keep_last=1)
    return logits[:, -1], state


@pytest.mark.parametrize("family", FAMILIES)
def test_chunks_and_left_padding_read_as_one_pass(family):
    model, prompts = decoder(family), prompts_of(family)
    rows = [p for p in prompts if p]
    alone = torch.cat([_last_logits(model, [row])[0] for row in rows])
    padded, _ = _last_logits(model, rows)                       # one left-padded chunk of mixed lengths
    torch.testing.assert_close(padded, alone, atol=1e-4, rtol=1e-4)
    row = rows[2]
    first, state = _last_logits(model, [row[:4]])
    chunked, _ = _last_logits(model, [row[4:]], state, [4])    # the rest after what the state holds
    torch.testing.assert_close(chunked, alone[2:3], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_reorder_moves_and_copies_rows(family):
    model, prompts = decoder(family), prompts_of(family)
    rows = [p for p in prompts if p]
    _, state = _last_logits(model, rows)
    state = model.reorder(state, torch.tensor([2, 0, 0]))
    nxt = [[7], [8], [9]]
    after, _ = _last_logits(model, nxt, state, [len(rows[2]), len(rows[0]), len(rows[0])])
    expected = torch.cat([_last_logits(model, [rows[i] + t])[0] for i, t in zip([2, 0, 0], nxt)])
    torch.testing.assert_close(after, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_truncate_forgets_each_row_s_last_tokens(family):
    model, prompts = decoder(family), prompts_of(family)
    rows = [prompts[0], prompts[2]]
    _, state = _last_logits(model, rows)
    drafts = [[4, 6, 8], [5, 7, 9]]   # read, then partly rejected: row 0 keeps 1 of 3, row 1 keeps 2
    _, state = model.step(*left_padded(drafts, [len(r) for r in rows], "cpu"), state)
    state = model.truncate(state, [len(rows[0]) + 1, len(rows[1]) + 2])
    cont = [[3], [2]]
    after, _ = _last_logits(model, cont, state, [len(rows[0]) + 1, len(rows[1]) + 2])
    expected = torch.cat([_last_logits(model, [r + d[:k] + c])[0] for r, d, k, c in zip(rows, drafts, [1, 2], cont)])
    torch.testing.assert_close(after, expected, atol=1e-4, rtol=1e-4)


def test_a_recurrent_state_is_cut_back_only_within_its_last_step():
    model = decoder("lstm")
    _, state = _last_logits(model, [[1, 2, 3, 4]])
    _, state = _last_logits(model, [[5]], state, [4])
    with pytest.raises(ValueError, match="only within its last step"):
        model.truncate(state, [2])


def test_every_family_implements_the_protocol():
    from lmforge.models.bert import BERT, BERTConfig

    assert all(isinstance(decoder(family), Decoder) for family in FAMILIES)
    assert not isinstance(BERT(BERTConfig(vocab_size=VOCAB)), Decoder)   # an encoder does not generate


def test_an_encoder_memory_is_refused_by_decoder_only_models():
    for family in FAMILIES:
        with pytest.raises(ValueError, match="memory"):
            decoder(family).new_state(1, 8, memory=torch.zeros(1, 3, 4))


def test_rows_that_finish_leave_the_batch_and_the_rest_go_on():
    model = decoder("gpt")
    prompts = prompts_of("gpt")[:3]
    alone = [generate(model, p, max_new_tokens=30, sampling=GREEDY, seed=0, eos_id=None, decode=decode)
             for p in prompts]
    eos = alone[1].token_ids[4]   # row 1 ends early at this token; the others may not contain it as early
    batched = generate_batch(model, prompts, max_new_tokens=30, sampling=GREEDY, seeds=[0] * 3, eos_id=eos,
                             decode=decode)
    for prompt, row in zip(prompts, batched):
        single = generate(model, prompt, max_new_tokens=30, sampling=GREEDY, seed=0, eos_id=eos, decode=decode)
        assert (row.token_ids, row.stop_reason) == (single.token_ids, single.stop_reason)
    assert batched[1].stop_reason == "eos" and len(batched[1].token_ids) <= 4
