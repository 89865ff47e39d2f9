"""Perplexity and bits-per-byte against hand-worked values."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lmforge.evaluation.perplexity import NLLSums, nll_sums, unigram_bits_per_byte


class Uniform(nn.Module):
    """Every token equally likely: loss must be exactly ln(V)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        return torch.zeros(*tokens.shape, self.vocab_size)


def test_uniform_model_hand_worked():
    tokens = np.arange(41) % 7
    starts = np.array([0, 10, 20, 30])
    token_bytes = np.array([0, 1, 2, 3, 1, 1, 1])
    sums = nll_sums(Uniform(7), tokens, starts, 10, 3, torch.device("cpu"), token_bytes, 0.0)
    targets = np.concatenate([tokens[s + 1:s + 11] for s in starts])
    assert sums.tokens == 40
    assert sums.nll == pytest.approx(40 * math.log(7), rel=1e-6)
    assert sums.bytes == token_bytes[targets].sum()
    report = sums.report()
    assert report["perplexity"] == pytest.approx(7.0)
    assert report["bits_per_byte"] == pytest.approx(40 * math.log2(7) / token_bytes[targets].sum())


def test_ratio_bytes_when_no_table():
    sums = nll_sums(Uniform(4), np.zeros(21, dtype=np.int64), np.array([0, 10]), 10, 8, torch.device("cpu"),
                    None, 2.5)
    assert sums.bytes == pytest.approx(50.0)


def test_sums_add():
    total = NLLSums(1.0, 2, 3.0) + NLLSums(2.0, 3, 4.0)
    assert (total.nll, total.tokens, total.bytes) == (3.0, 5, 7.0)


def test_unigram_baseline_hand_worked():
    train = np.array([0, 0, 0, 1])       # add-one: p(0) = 4/6, p(1) = 2/6
    val = np.array([0, 1])
    result = unigram_bits_per_byte(train, val, 2, val_bytes=2.0)
    expected_nll = -(math.log(4 / 6) + math.log(2 / 6))
    assert result["val_loss"] == pytest.approx(expected_nll / 2)
    assert result["bits_per_byte"] == pytest.approx(expected_nll / math.log(2) / 2)


def test_eval_of_an_empty_split_is_an_input_error(tmp_path, cli):
    from conftest import TINY_MODEL, TINY_TRAIN, assert_input_error

    (tmp_path / "book.txt").write_text("\n\n".join(f"Paragraph {i} of a long single book. " * 20 for i in range(40)))
    prepared = cli("prepare", tmp_path / "book.txt", "--out", tmp_path / "data", "--val-fraction", "0",
                   "--tokenizer", "byte")
    assert prepared.code == 0
    shards = tmp_path / "data" / "tokens" / "byte"
    assert cli("train", "--data", shards, "--out", tmp_path / "run", *TINY_MODEL, *TINY_TRAIN,
               "--max-steps", "2").code == 0
    assert_input_error(cli("eval", "--run", tmp_path / "run"), "val.bin", "split is empty", "--val-fraction")
    assert cli("eval", "--run", tmp_path / "run", "--split", "train", "--max-tokens", "200").code == 0


def test_sliding_windows_score_every_target_once_with_more_context():
    import numpy as np
    import torch

    from lmforge.evaluation.perplexity import nll_sums
    from lmforge.models.gpt import GPT, GPTConfig
    from lmforge.training.batches import eval_windows

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, max_seq_len=16, n_layers=1, n_heads=2, d_model=16))
    tokens = np.random.default_rng(0).integers(0, 20, 200).astype(np.uint16)
    device = torch.device("cpu")
    plain = nll_sums(model, tokens, eval_windows(tokens, 16, None), 16, 4, device, None, 1.0)
    same = nll_sums(model, tokens, eval_windows(tokens, 16, None, stride=16), 16, 4, device, None, 1.0)
    assert (plain.nll, plain.tokens) == (same.nll, same.tokens)
    starts = eval_windows(tokens, 16, None, stride=4)
    sliding = nll_sums(model, tokens, starts, 16, 4, device, None, 1.0, scored_from=12)
    assert sliding.tokens == 16 + 4 * (len(starts) - 1) and starts[-1] + 17 <= len(tokens)
    # the first window's targets are scored as in the plain evaluation; later ones with 12+ tokens of context
    first = nll_sums(model, tokens, starts[:1], 16, 4, device, None, 1.0)
    assert abs(first.nll - nll_sums(model, tokens, starts[:1], 16, 4, device, None, 1.0, scored_from=12).nll) < 1e-9
