"""Run kinds: every kind of run directory is opened as what it is (runs written before kinds were
recorded too), a verb given a kind it does not serve names the verb that does, older layouts are read
and newer versions refused, and config.toml has one writer."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_MODEL, TINY_TRAIN, assert_input_error
from lmforge.runs import RUN_KINDS, RunConfig, open_run, write_run


def old_config(folder, run: dict, extra: str = "") -> None:
    """A config.toml as runs before kinds wrote it (no kind in [run])."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{k} = {json.dumps(v)}" for k, v in run.items()]
    (folder / "config.toml").write_text("[run]\nformat = \"lmforge.run\"\nversion = 2\n" + "\n".join(lines) +
                                        "\n" + extra + "\n[data]\nshards = \"\"\n")


@pytest.mark.parametrize("run, files, kind", [
    ({"family": "gpt", "objective": "causal_lm"}, [], "lm"),
    ({"family": "bert", "objective": "masked_lm"}, [], "lm"),
    ({"family": "bert", "objective": "classify", "task": "classify"}, [], "task"),
    ({"family": "tfidf-logreg", "objective": "classify", "task": "classify"}, ["baseline.json"], "baseline"),
    ({"family": "ngram", "objective": "counts"}, [], "ngram"),
    ({"family": "word2vec", "objective": "embeddings"}, [], "embeddings"),
])
def test_runs_written_before_kinds_are_told_apart(tmp_path, run, files, kind):
    old_config(tmp_path / "run", run)
    for name in files:
        (tmp_path / "run" / name).write_text("{}")
    opened = open_run(tmp_path / "run")
    assert opened.contract.kind == kind and opened.kind is RUN_KINDS[kind]
    assert opened.weights_path.name == RUN_KINDS[kind].weights


def test_objective_fields_move_out_of_train(tmp_path):
    old_config(tmp_path / "bert", {"family": "bert", "objective": "masked_lm"},
               "[train]\nlr = 0.01\nmask_rate = 0.2\nwhole_word_mask = true\npatience = 3\n")
    sections = open_run(tmp_path / "bert").sections
    assert sections["train"] == {"lr": 0.01} and sections["masked_lm"] == {"mask_rate": 0.2, "whole_word_mask": True}
    old_config(tmp_path / "task", {"family": "bert", "objective": "classify", "task": "classify"},
               "[train]\nlr = 0.01\nmask_rate = 0.15\npatience = 3\n")
    sections = open_run(tmp_path / "task").sections
    assert sections["finetune"] == {"patience": 3} and "masked_lm" not in sections and sections["train"] == {"lr": 0.01}


def test_one_writer_puts_run_first_and_data_last(tmp_path):
    contract = RunConfig("gpt", "tiny", "causal_lm", "/shards", "abc", kind="lm")
    write_run(tmp_path / "run", contract, {"model": {"d_model": 32, "dropout": None}, "train": {"lr": 0.1}})
    text = (tmp_path / "run" / "config.toml").read_text()
    assert text.index("[run]") < text.index("[model]") < text.index("[train]") < text.index("[data]")
    assert 'kind = "lm"' in text and "dropout" not in text
    run = open_run(tmp_path / "run")
    assert run.raw("model") == {"d_model": 32} and run.contract == contract
    with pytest.raises(ValueError):
        write_run(tmp_path / "x", RunConfig("gpt", "", "causal_lm", "", "", kind="other"), {})


def test_a_bad_section_value_names_the_file_and_the_section(tmp_path):
    from lmforge.errors import InputError
    from lmforge.training.config import TrainConfig

    old_config(tmp_path / "run", {"family": "gpt", "objective": "causal_lm"}, "[train]\nlr = \"fast\"\n")
    with pytest.raises(InputError, match=r"config.toml \[train\].*lr must be float"):
        open_run(tmp_path / "run").section("train", TrainConfig)


@pytest.fixture(scope="module")
def kinds(prepared, tmp_path_factory):
    """A language-model run, a task run and an embeddings run."""
    from lmforge.cli import main

    root = tmp_path_factory.mktemp("kinds")
    assert main(["train", "--data", str(prepared["shards"]), "--out", str(root / "gpt"), *TINY_MODEL, *TINY_TRAIN,
                 "--max-steps", "3"]) == 0
    data = root / "labels.jsonl"
    data.write_text("".join(json.dumps({"text": f"a {w} text", "label": w}) + "\n" for w in ["good", "bad"] * 30))
    assert main(["finetune", "--task", "classify", "--model", "fasttext", "--data", str(data), "--epochs", "1",
                 "--threads", "1", "--out", str(root / "task")]) == 0
    assert main(["embed", "train", str(prepared["data"]), "--dim", "8", "--epochs", "1", "--min-count", "1",
                 "--workers", "1", "--out", str(root / "w2v")]) == 0
    return root


def test_each_verb_names_the_verb_that_serves_the_run_it_was_given(kinds, cli):
    assert_input_error(cli("predict", "--run", kinds / "gpt", "x"), "a language-model run (gpt)",
                       "a fine-tuned task run", "lmforge generate")
    assert_input_error(cli("generate", "--run", kinds / "task", "--prompt", "x"), "a fine-tuned task run (fasttext)",
                       "lmforge predict")
    assert_input_error(cli("eval", "--run", kinds / "w2v"), "a word-vector run (word2vec)", "lmforge embed neighbours")
    assert_input_error(cli("embed", "neighbours", kinds / "gpt", "river"), "a language-model run", "word-vector run")
    assert_input_error(cli("finetune", "--task", "classify", "--init", kinds / "task", "--data", kinds / "labels.jsonl",
                           "--out", kinds / "again"), "a fine-tuned task run", "lmforge predict")
    assert_input_error(cli("prune", "--run", kinds / "gpt", "--sparsity", "0.5", "--out", kinds / "pruned"),
                       "a language-model run", "prune")
    for kind, opened in (("lm", "gpt"), ("task", "task"), ("embeddings", "w2v")):
        assert open_run(kinds / opened).contract.kind == kind
        assert f'kind = "{kind}"' in (kinds / opened / "config.toml").read_text()


def test_a_directory_that_is_not_a_run_or_is_newer_is_one_line(kinds, cli, tmp_path):
    for verb in (["eval", "--run"], ["generate", "--run"], ["predict", "--run"], ["summary", "--run"]):
        assert_input_error(cli(*verb, tmp_path), "not a run directory")
    config = (kinds / "gpt" / "config.toml").read_text()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "config.toml").write_text(config.replace("version = 2", "version = 7"))
    for verb in ("eval", "generate", "predict"):
        assert_input_error(cli(verb, "--run", tmp_path / "new"), "run format version 7 is newer", "upgrade lmforge")
