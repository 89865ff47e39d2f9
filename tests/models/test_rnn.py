"""Recurrent LMs: shapes, state carried across windows, exact resets at document starts, the decoder protocol."""

import pytest
import torch

from lmforge.models.rnn import RNNLM, RNNConfig


def model(cell: str, **overrides) -> RNNLM:
    torch.manual_seed(0)
    return RNNLM(RNNConfig(vocab_size=30, cell=cell, d_model=16, n_layers=2, dropout=0.0, **overrides)).eval()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shapes_and_carried_state_equal_one_long_pass(cell):
    lm = model(cell)
    tokens = torch.randint(0, 30, (3, 20))
    whole, state = lm.hidden(tokens)
    assert whole.shape == (3, 20, 16)
    assert len(state) == (2 if cell == "lstm" else 1) and state[0].shape == (2, 3, 16)
    first, carried = lm.hidden(tokens[:, :7])
    second, _ = lm.hidden(tokens[:, 7:], carried)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    assert lm(tokens).shape == (3, 20, 30)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_reset_starts_that_row_from_a_zero_state_and_leaves_the_others(cell):
    lm = model(cell)
    tokens = torch.randint(0, 30, (2, 12))
    before = lm.new_state(2).layers
    before = tuple(torch.randn_like(s) for s in before)
    resets = torch.zeros(2, 12, dtype=torch.bool)
    resets[0, 5] = True                                      # row 0: a new document at position 5
    out, _ = lm.hidden(tokens, before, resets)
    fresh, _ = lm.hidden(tokens[:1, 5:])                     # row 0 from position 5, zero state
    torch.testing.assert_close(out[0, 5:], fresh[0])
    untouched, _ = lm.hidden(tokens[1:], tuple(s[:, 1:] for s in before))
    torch.testing.assert_close(out[1], untouched[0])


def test_decoder_protocol_steps_match_the_full_forward():
    lm = model("lstm")
    tokens = torch.randint(0, 30, (1, 9))
    state = lm.new_state(1)
    logits = []
    for t in range(9):
        step_logits, state = lm.step(tokens[:, t:t + 1], torch.tensor([[t]]), state)
        logits.append(step_logits)
    torch.testing.assert_close(torch.cat(logits, dim=1), lm(tokens))
    assert lm.max_context is None


def test_config_errors_name_the_flag():
    with pytest.raises(ValueError, match="--tie-embeddings needs --d-embed"):
        RNNConfig(d_model=32, d_embed=16, tie_embeddings=True)
    with pytest.raises(ValueError, match="cell must be"):
        RNNConfig(cell="transformer")
    assert RNNLM(RNNConfig(vocab_size=10, d_model=8, d_embed=4, tie_embeddings=False)).lm_head.weight.shape == (10, 8)
