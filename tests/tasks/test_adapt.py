"""Task-adaptive pretraining: `finetune --pretrain-time` continues the backbone's own LM objective on the
task's training texts (their labels and the valid split unread), then fine-tunes."""

import json

import numpy as np
import pytest
from tests.conftest import assert_input_error
from tests.tasks.test_finetune import FAST, keyword_data  # noqa: F401 (a fixture)

from lmforge.applications.adapt import task_stream
from lmforge.tokenization.tokenizer import Tokenizer


def test_the_stream_is_the_texts_each_ended_by_eos(prepared):
    tokenizer = Tokenizer(prepared["tokenizer"])
    stream = task_stream(["a river", "the engine"], tokenizer)
    expected = [*tokenizer.encode("a river"), tokenizer.eos_id, *tokenizer.encode("the engine"), tokenizer.eos_id]
    assert stream.tolist() == expected and stream.dtype == np.uint16


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_pretrain_then_finetune(cli, prepared, keyword_data, tmp_path, family):   # noqa: F811
    out = cli("finetune", "--task", "classify", "--model", family, "--tokenizer", prepared["tokenizer"], "--data",
              keyword_data, *FAST, "--pretrain-time", "3", "--out", tmp_path / family, "--json")
    assert out.code == 0, out.err
    result = out.json()
    assert result["pretrain"]["objective"] == ("masked_lm" if family == "bert" else "causal_lm")
    assert result["pretrain"]["steps"] > 0 and result["pretrain"]["val_loss"] is not None
    records = [json.loads(line) for line in (tmp_path / family / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in records)
    assert not (tmp_path / family / "pretrain" / "checkpoints").exists()
    assert result["valid"]["accuracy"] >= 0.9


def test_a_task_body_has_nothing_to_pretrain(cli, keyword_data, tmp_path):   # noqa: F811
    assert_input_error(cli("finetune", "--task", "classify", "--model", "fasttext", "--data", keyword_data,
                           "--pretrain-time", "3", "--out", tmp_path / "ft"), "--pretrain-time", "fasttext")
