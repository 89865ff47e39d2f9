"""Chat fine-tuning: the template lays conversations out the same at training and inference, the loss reads
only assistant tokens, the run's reply perplexity beats its base run's, and `lmforge chat` talks."""

from __future__ import annotations

import io

import numpy as np

from lmforge.evaluation.masked import IGNORE
from lmforge.inference.loading import load_lm
from lmforge.runs import open_run
from lmforge.tokenization.chat import Message, load_template
from lmforge.tokenization.specials import CHAT_END, CHAT_ROLES
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.chat_spec import ChatSampler, PackedConversations

MESSAGES = [Message("system", "be brief"), Message("user", "hello"), Message("assistant", "hello there"),
            Message("user", "<|assistant|> hi")]


def test_template_ids_by_hand_and_the_same_at_training_and_inference(served_runs):
    tokenizer = Tokenizer(served_runs["chat"])
    template = load_template(served_runs["chat"], tokenizer)
    role = {name: tokenizer.hf.token_to_id(token) for name, token in CHAT_ROLES.items()}
    end = tokenizer.hf.token_to_id(CHAT_END)
    assert len({*role.values(), end}) == 4 and min(role.values()) >= Tokenizer(served_runs["gpt"]).vocab_size
    ids, trained = template.render(MESSAGES[:3])
    expected = [tokenizer.eos_id, role["system"], *tokenizer.encode("be brief"), end,
                role["user"], *tokenizer.encode("hello"), end,
                role["assistant"], *tokenizer.encode("hello there"), end]
    assert ids == expected
    reply = len(tokenizer.encode("hello there")) + 1
    assert trained == [False] * (len(ids) - reply) + [True] * reply    # the reply and its end token only
    # inference: the prompt of the next reply is the training layout up to the assistant's role token
    prompt = template.prompt(MESSAGES[:2])
    assert prompt == expected[:len(prompt) - 1] + [role["assistant"]]
    assert ids[:len(prompt)] == prompt
    # role tokens are placed by id: typed text never becomes one
    typed = template.render(MESSAGES)[0]
    assert typed.count(role["assistant"]) == 1
    assert tokenizer.decode(template.render(MESSAGES)[0]) .endswith("<|assistant|> hi")


def test_loss_mask_covers_only_assistant_tokens():
    # ids by hand: eos 0, roles 10-12, end 13, words 20+
    rendered = [([0, 10, 20, 13, 11, 21, 22, 13], [False] * 5 + [True] * 3),
                ([0, 11, 23, 13, 12, 24, 13], [False] * 4 + [False, True, True])]
    packed = PackedConversations.of(rendered)
    targets = packed.targets()
    assert targets.tolist() == [IGNORE, IGNORE, IGNORE, IGNORE, 21, 22, 13, IGNORE, IGNORE, IGNORE, IGNORE,
                                IGNORE, 24, 13]
    sampler = ChatSampler(packed, 4, 2, 1, 0, 1, 0, 0, recurrent=False)
    batch = sampler.micro_batch(0, 0)
    for row_tokens, row_targets in zip(batch.tokens.tolist(), batch.targets.tolist()):
        start = int(np.flatnonzero([packed.ids[i:i + 4].tolist() == row_tokens for i in range(len(packed.ids) - 4)])[0])
        assert row_targets == targets[start:start + 4].tolist()


def test_chat_run_beats_its_base_run_and_eval_reports_both(cli, served_runs):
    result = cli("eval", "--run", served_runs["chat"], "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["objective"] == "chat" and report["conversations"] == 30
    assert report["reply_perplexity"] < report["base"]["reply_perplexity"] / 5
    assert "reply perplexity" in result.err
    run = open_run(served_runs["chat"])
    assert run.contract.objective == "chat" and run.contract.init_from
    loaded = load_lm(run)
    assert loaded.model.config.vocab_size == loaded.tokenizer.vocab_size


def test_finetune_chat_bad_input(cli, served_runs, tmp_path):
    from tests.conftest import assert_input_error

    (tmp_path / "bad.jsonl").write_text('{"text": "no conversation here"}\n')
    assert_input_error(cli("finetune", "--task", "chat", "--init", served_runs["gpt"], "--data",
                           tmp_path / "bad.jsonl", "--out", tmp_path / "out"), "no training conversations")
    assert_input_error(cli("finetune", "--task", "chat", "--init", served_runs["sent"], "--data",
                           served_runs["conversations"], "--out", tmp_path / "out2"), "sent")


def test_terminal_chat_streams_keeps_history_and_resets(cli, served_runs, monkeypatch):
    lines = iter(["what is your name", "/reset", "/system be brief", "hello", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    result = cli("chat", "--run", served_runs["chat"], "--temperature", "0", "--max-new-tokens", "20")
    assert result.code == 0, result.err
    assert "model> my name is forge" in result.out
    assert "(conversation reset)" in result.err and "(system message set)" in result.err
    assert io.StringIO(result.out).read().count("model>") == 2
    assert "not a chat run" in cli("chat", "--run", served_runs["gpt"]).err
