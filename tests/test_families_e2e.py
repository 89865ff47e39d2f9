"""Every family end to end on a tiny corpus: train -> eval -> generate / compare, and the bad input
of the family-aware commands."""

import json

import pytest

from conftest import TINY_TRAIN, assert_input_error, write_corpus

FAMILY_ARGS = {  # the LSTM keeps its preset's recipe (plain SGD at LR 20); the others take LR 0.01
    "gpt": ["--n-layers", "2", "--d-model", "32", "--n-heads", "2", "--max-seq-len", "32", "--lr", "0.01"],
    "lstm": ["--n-layers", "2", "--d-model", "32", "--seq-len", "32"],
    "gru": ["--n-layers", "1", "--d-model", "32", "--seq-len", "32", "--lr", "0.01"],
    "rnn": ["--n-layers", "1", "--d-model", "32", "--seq-len", "32", "--lr", "0.01"],
    "bert": ["--n-layers", "2", "--d-model", "32", "--n-heads", "2", "--max-seq-len", "32", "--lr", "0.01"],
}


def train(cli, prepared, family, out, *extra):
    return cli("train", "--data", prepared["shards"], "--model", family, "--out", out, *TINY_TRAIN,
               *FAMILY_ARGS[family], *extra)


@pytest.fixture(scope="module")
def family_runs(prepared, tmp_path_factory):
    """One short run of every family on the shared tiny corpus."""
    from lmforge.cli import main

    root = tmp_path_factory.mktemp("families")
    for family, args in FAMILY_ARGS.items():
        code = main(["train", "--data", str(prepared["shards"]), "--model", family, "--out", str(root / family),
                     *TINY_TRAIN, *args, "--max-steps", "30"])
        assert code == 0, family
    return root


@pytest.mark.parametrize("family", sorted(FAMILY_ARGS))
def test_every_family_learns_and_evaluates(family_runs, cli, family):
    run = family_runs / family
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in records if "loss" in r}
    assert losses[30] < losses[1] - 0.5, losses
    assert (run / "loss.png").exists() and (run / "model.safetensors").exists()
    config = (run / "config.toml").read_text()
    assert f'family = "{family}"' in config and "version = 2" in config
    result = cli("eval", "--run", run, "--json")
    assert result.code == 0, result.err
    metrics = result.json()
    assert metrics["family"] == family
    if family == "bert":
        assert metrics["objective"] == "masked_lm"
        assert 0 < metrics["masked_accuracy"] <= 1 and metrics["pseudo_perplexity"] > 1
        assert metrics["mlm_loss"] == metrics["val_loss"]
    else:
        assert {"val_loss", "perplexity", "bits_per_byte", "tokens", "bytes"} <= metrics.keys()
        assert metrics["val_loss"] < losses[1]


@pytest.mark.parametrize("family", ["gpt", "lstm", "gru", "rnn"])
def test_decoders_generate_with_the_same_options(family_runs, cli, family):
    result = cli("generate", "--run", family_runs / family, "--prompt", "The river", "--max-new-tokens", "12",
                 "--seed", "3", "--top-k", "20", "--top-p", "0.9", "--json")
    assert result.code == 0, result.err
    first = result.json()["generations"][0]
    assert first["tokens"] <= 12 and first["stop_reason"] in ("length", "eos")
    again = cli("generate", "--run", family_runs / family, "--prompt", "The river", "--max-new-tokens", "12",
                "--seed", "3", "--top-k", "20", "--top-p", "0.9", "--json").json()["generations"][0]
    assert again["text"] == first["text"]
    streamed = cli("generate", "--run", family_runs / family, "--prompt", "The river", "--max-new-tokens", "12",
                   "--seed", "3", "--top-k", "20", "--top-p", "0.9")
    assert streamed.out == "The river" + first["text"] + "\n"


def test_compare_puts_every_family_in_one_table(family_runs, cli, tmp_path):
    runs = [family_runs / f for f in ("gpt", "lstm", "gru", "rnn", "bert")]
    result = cli("compare", *runs, "--out", tmp_path / "cmp.png", "--json")
    assert result.code == 0, result.err
    rows = result.json()["runs"]
    assert [r["family"] for r in rows] == ["gpt", "lstm", "gru", "rnn", "bert"]
    assert all(r["params"] > 0 and r["tokens_per_s"] > 0 and r["train_time"] > 0 for r in rows)
    assert all(r["bits_per_byte"] > 0 for r in rows[:4]) and rows[4]["bits_per_byte"] is None
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    assert "bits/byte" in result.err and "best:" in result.err


def test_generate_on_an_encoder_says_what_to_do(family_runs, cli):
    assert_input_error(cli("generate", "--run", family_runs / "bert"), "encoder", "does not generate",
                       "lmforge eval")


def test_another_family_s_option_is_refused_by_name(prepared, cli, tmp_path):
    result = train(cli, prepared, "lstm", tmp_path / "a", "--n-kv-heads", "2")
    assert_input_error(result, "--n-kv-heads is an option of gpt, not of lstm", "--d-model")
    assert not (tmp_path / "a").exists()
    assert_input_error(train(cli, prepared, "gpt", tmp_path / "b", "--d-embed", "16"), "--d-embed", "lstm")


def test_masked_lm_needs_a_tokenizer_with_a_mask_token(prepared, cli, tmp_path):
    spec = (prepared["tokenizer"] / "tokenizer.json").read_text().replace("<|mask|>", "<|old|>")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "tokenizer.json").write_text(spec)
    assert cli("tokenize", prepared["data"], "--tokenizer", tmp_path / "old", "--out", tmp_path / "shards").code == 0
    result = cli("train", "--data", tmp_path / "shards", "--model", "bert", "--out", tmp_path / "run",
                 *FAMILY_ARGS["bert"], "--max-steps", "2")
    assert_input_error(result, "has no <|mask|> token", "masked-LM training", "lmforge tokenizer train")
    assert not (tmp_path / "run").exists()


def test_compare_refuses_runs_on_different_validation_text(prepared, family_runs, cli, tmp_path):
    write_corpus(tmp_path / "other", docs=60, seed=9)
    assert cli("prepare", tmp_path / "other", "--out", tmp_path / "data", "--val-fraction", "0.2",
               "--min-chars", "10").code == 0
    assert cli("tokenize", tmp_path / "data", "--tokenizer", prepared["tokenizer"]).code == 0
    shards = tmp_path / "data" / "tokens" / prepared["tokenizer"].name
    assert cli("train", "--data", shards, "--out", tmp_path / "run", *FAMILY_ARGS["gpt"], *TINY_TRAIN,
               "--max-steps", "2").code == 0
    assert_input_error(cli("compare", family_runs / "gpt", tmp_path / "run", "--out", tmp_path / "c.png"),
                       "validation split", "same corpus")


def test_resume_reads_the_old_run_format_and_refuses_a_newer_one(prepared, cli, tmp_path):
    assert train(cli, prepared, "gpt", tmp_path / "run", "--max-steps", "4").code == 0
    config = (tmp_path / "run" / "config.toml").read_text()
    run_section, rest = config.split("[model]", 1)
    (tmp_path / "run" / "config.toml").write_text(
        '[run]\nmodel = "gpt"\npreset = "tiny"\nformat = "lmforge.run"\nversion = 1\n\n[model]' + rest)
    result = cli("train", "--resume", tmp_path / "run", "--max-steps", "6", "--json")
    assert result.code == 0, result.err
    assert result.json()["steps"] == 6
    (tmp_path / "run" / "config.toml").write_text(run_section.replace("version = 2", "version = 99") + "[model]" + rest)
    assert_input_error(cli("train", "--resume", tmp_path / "run", "--max-steps", "8"), "run format version 99",
                       "upgrade lmforge")


def test_a_warmup_longer_than_training_is_reported(prepared, cli, tmp_path):
    result = train(cli, prepared, "gpt", tmp_path / "run", "--max-steps", "3", "--warmup-steps", "5")
    assert result.code == 0
    assert "--warmup-steps 5 is not shorter than --max-steps 3" in result.err


def test_tensorboard_event_files_when_asked(prepared, cli, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(cli, prepared, "gru", tmp_path / "run", "--max-steps", "10", "--log", "tensorboard")
    assert result.code == 0, result.err
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"train/loss", "val_loss"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("val_loss")] == [10]


def test_speculative_generate_from_the_command_line(family_runs, cli):
    gpt = family_runs / "gpt"
    plain = cli("generate", "--run", gpt, "--prompt", "The river", "--max-new-tokens", "16", "--temperature", "0",
                "--json").json()["generations"][0]
    for drafter in (["--prompt-lookup"], ["--draft", gpt, "--draft-tokens", "3"]):
        result = cli("generate", "--run", gpt, "--prompt", "The river", "--max-new-tokens", "16", "--temperature",
                     "0", "--json", *drafter)
        assert result.code == 0, result.err
        fast = result.json()["generations"][0]
        assert fast["text"] == plain["text"] and "acceptance" in fast
        assert "drafted tokens accepted" in result.err
    assert fast["acceptance"] == 1.0  # the run drafting for itself is always right
    assert_input_error(cli("generate", "--run", family_runs / "lstm", "--prompt-lookup"), "state can be cut back",
                       "drop --draft")
    assert_input_error(cli("generate", "--run", gpt, "--draft", family_runs / "lstm"), "must be a gpt run")


def test_runs_lists_every_run_of_a_folder(family_runs, cli, tmp_path):
    result = cli("runs", family_runs, "--json")
    assert result.code == 0, result.err
    rows = {r["family"]: r for r in result.json()["runs"]}
    assert set(rows) == {"gpt", "lstm", "gru", "rnn", "bert"}
    assert all(r["steps"] == 30 and r["trained"] and r["best_val_loss"] > 0 for r in rows.values())
    assert rows["gpt"]["approx_bits_per_byte"] > 0 and rows["bert"]["approx_bits_per_byte"] is None
    table = cli("runs", family_runs)
    assert table.code == 0 and "lstm" in table.out and "best val" in table.out
    assert_input_error(cli("runs", tmp_path / "nothing"), "no such folder")


def test_summary_prints_layers_and_draws_the_diagram(family_runs, cli, tmp_path):
    for family in ("gpt", "lstm", "bert"):
        result = cli("summary", "--run", family_runs / family, "--out", tmp_path / f"{family}.png", "--json")
        assert result.code == 0, result.err
        summary = result.json()
        assert summary["family"] == family and summary["params"] > 0 and summary["layers"]
        assert (tmp_path / f"{family}.png").stat().st_size > 5_000
        assert "total parameters" in result.err


def test_sample_every_prints_text_during_training(prepared, cli, tmp_path):
    result = train(cli, prepared, "lstm", tmp_path / "run", "--max-steps", "4", "--sample-every", "2")
    assert result.code == 0, result.err
    assert result.err.count("sample at step") == 2


def test_eval_stride_for_decoders_only(family_runs, cli):
    result = cli("eval", "--run", family_runs / "gpt", "--stride", "8", "--json")
    assert result.code == 0, result.err
    assert result.json()["tokens"] > 0
    assert_input_error(cli("eval", "--run", family_runs / "lstm", "--stride", "8"), "--stride", "stream")
    assert_input_error(cli("eval", "--run", family_runs / "gpt", "--stride", "64"), "must be in 1..32")
