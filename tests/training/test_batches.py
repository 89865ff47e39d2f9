"""Samplers: masking statistics, whole-word masking, stream continuity, rank independence."""

import numpy as np
import torch

from lmforge.evaluation.masked import IGNORE
from lmforge.training.batches import StreamSampler, WindowSampler
from lmforge.training.masked_lm import MaskedWindowSampler, MaskingRule

SPECIAL = np.array([0, 1, 2, 3, 4, 5, 6])  # bos eos pad unk cls sep mask, as the tokenizer layer declares them
CLS, MASK = 4, 6


def rule(**overrides) -> MaskingRule:
    return MaskingRule(cls_id=CLS, mask_id=MASK, special=SPECIAL, vocab_size=100, **overrides)


def test_masking_statistics_follow_bert():
    rng = np.random.default_rng(0)
    windows = rng.integers(7, 100, size=(400, 128))
    windows[:, ::10] = 1  # EOS tokens are never chosen
    inputs, targets = rule().apply(windows, np.random.default_rng(1))
    assert (inputs[:, 0] == CLS).all() and (targets[:, 0] == IGNORE).all()
    inputs, targets, windows = inputs[:, 1:], targets[:, 1:], windows
    chosen = targets != IGNORE
    ordinary = windows != 1
    assert not chosen[~ordinary].any()
    assert abs(chosen[ordinary].mean() - 0.15) < 0.005
    masked = (inputs == MASK)[chosen].mean()
    kept = (inputs == windows)[chosen].mean()
    assert abs(masked - 0.8) < 0.02 and 0.09 < kept < 0.12  # 10% kept, plus random draws equal to the token
    assert (targets[chosen] == windows[chosen]).all()
    assert (inputs[~chosen] == windows[~chosen]).all()


def test_whole_word_masking_takes_every_piece_of_a_word():
    continues = np.zeros(100, dtype=bool)
    continues[50:] = True             # ids >= 50 are '##' pieces
    rng = np.random.default_rng(0)
    windows = np.where(rng.random((300, 64)) < 0.5, rng.integers(7, 50, (300, 64)), rng.integers(50, 100, (300, 64)))
    _, targets = rule(continues_word=continues).apply(windows, np.random.default_rng(2))
    chosen = targets[:, 1:] != IGNORE
    for row in range(300):
        for t in range(1, 64):
            if continues[windows[row, t]] and (windows[row, :t] < 50).any():
                assert chosen[row, t] == chosen[row, t - 1]   # a piece goes with the piece before it
    assert 0.1 < chosen.mean() < 0.2


def test_stream_windows_continue_each_row_and_reset_at_documents():
    tokens = np.arange(1000) % 97 + 7
    tokens[[100, 430]] = 1  # two document boundaries (EOS)
    sampler = StreamSampler(tokens.astype(np.uint16), 10, 2, 1, 0, 1, 0, "t", eos_id=1)
    first, second = sampler.micro_batch(0, 0), sampler.micro_batch(1, 0)
    assert torch.equal(first.targets[:, -1], second.tokens[:, 0])  # each row reads on
    assert first.tokens[0, 0].item() == tokens[0] and first.tokens[1, 0].item() == tokens[500]
    boundary = sampler.micro_batch(10, 0)                         # row 0, tokens 100..109
    assert boundary.resets[0, 0] and not boundary.resets[1].any()
    assert first.carry is second.carry                             # the state flows between steps
    first.carry.state = (torch.ones(1),)
    assert sampler.micro_batch(sampler.windows_per_pass, 0).carry.state is None  # a new pass starts fresh


def test_samplers_are_rank_independent():
    tokens = (np.arange(5000) % 91 + 7).astype(np.uint16)
    for make in (lambda r, w, b: WindowSampler(tokens, 16, b, 1, r, w, 3, "t"),
                 lambda r, w, b: StreamSampler(tokens, 16, b, 1, r, w, 3, "t", eos_id=1),
                 lambda r, w, b: MaskedWindowSampler(tokens, 16, b, 1, r, w, 3, "t", rule())):
        one = make(0, 1, 4).micro_batch(5, 0)
        halves = [make(r, 2, 2).micro_batch(5, 0) for r in (0, 1)]
        assert torch.equal(one.tokens, torch.cat([h.tokens for h in halves]))
        assert torch.equal(one.targets, torch.cat([h.targets for h in halves]))
