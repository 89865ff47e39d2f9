"""`lmforge generate` as a user runs it: prompts of a file decoded in batches (each prompt's text the one
it gets alone), beam search with scored n-best lists, every decoder family and n-gram runs, and the bad
input of the new options."""

from __future__ import annotations

import pytest

from conftest import TINY_MODEL, TINY_TRAIN, assert_input_error


@pytest.fixture(scope="module")
def runs(prepared, tmp_path_factory):
    from lmforge.cli import main

    root = tmp_path_factory.mktemp("generation")
    common = ["--data", str(prepared["shards"]), *TINY_TRAIN, "--max-steps", "20"]
    assert main(["train", "--out", str(root / "gpt"), *TINY_MODEL, *common]) == 0
    assert main(["train", "--model", "lstm", "--d-model", "32", "--seq-len", "16", "--out", str(root / "lstm"),
                 *common]) == 0
    assert main(["ngram", "train", str(prepared["data"]), "--order", "3", "--out", str(root / "kn3")]) == 0
    prompts = root / "prompts.txt"
    prompts.write_text("The river\nA quiet winter\n\nlight\nThe old engine runs and\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("run", ["gpt", "lstm", "kn3"])
def test_a_batch_of_prompts_gives_each_prompt_its_own_text(runs, cli, run):
    args = ["generate", "--run", runs / run, "--prompts-file", runs / "prompts.txt", "--max-new-tokens", "12",
            "--seed", "3", "--json"]
    one = cli(*args)
    batched = cli(*args, "--batch-size", "3")
    assert one.code == 0 and batched.code == 0, batched.err
    assert one.json() == batched.json()
    assert [g["prompt"] for g in batched.json()["generations"]] == ["The river", "A quiet winter", "light",
                                                                   "The old engine runs and"]
    assert "1 empty line(s) skipped (line 3)" in batched.err
    greedy = cli(*args, "--temperature", "0", "--batch-size", "4").json()["generations"]
    alone = [cli("generate", "--run", runs / run, "--prompt", g["prompt"], "--max-new-tokens", "12", "--temperature",
                 "0", "--json").json()["generations"][0] for g in greedy]
    assert greedy == alone


def test_printed_batches_start_with_each_prompt(runs, cli):
    result = cli("generate", "--run", runs / "gpt", "--prompts-file", runs / "prompts.txt", "--max-new-tokens", "5",
                 "--batch-size", "2", "--seed", "1")
    assert result.code == 0, result.err
    at = [result.out.find(prompt) for prompt in ("The river", "A quiet winter", "light", "The old engine runs and")]
    assert at[0] == 0 and at == sorted(at)   # each generation printed after its prompt, in order


@pytest.mark.parametrize("run", ["gpt", "lstm", "kn3"])
def test_beam_search_with_a_scored_n_best_list(runs, cli, run):
    result = cli("generate", "--run", runs / run, "--prompt", "The river", "--beam", "4", "--n-best", "3",
                 "--max-new-tokens", "8", "--length-penalty", "1.0", "--json")
    assert result.code == 0, result.err
    generation = result.json()["generations"][0]
    beams = generation["beams"]
    assert len(beams) == 3 and generation["text"] == beams[0]["text"]
    assert [b["score"] for b in beams] == sorted((b["score"] for b in beams), reverse=True)
    assert all(b["score"] <= 0 and b["tokens"] <= 8 for b in beams)
    printed = cli("generate", "--run", runs / run, "--prompt", "The river", "--beam", "4", "--n-best", "2",
                  "--max-new-tokens", "8")
    assert printed.out.count("score") == 2


def test_bad_generation_options_are_one_line_each(runs, cli, tmp_path):
    run = runs / "gpt"
    assert_input_error(cli("generate", "--run", run, "--beam", "0"), "--beam must be at least 1")
    assert_input_error(cli("generate", "--run", run, "--beam", "2", "--n-best", "3"), "--n-best 3", "--beam")
    assert_input_error(cli("generate", "--run", run, "--batch-size", "0"), "--batch-size must be positive")
    assert_input_error(cli("generate", "--run", run, "--beam", "2", "--prompt-lookup"), "--beam")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert_input_error(cli("generate", "--run", run, "--prompts-file", empty), "no prompts", "one prompt per line")
