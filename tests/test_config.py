"""Config precedence (defaults < preset < --config file < flags) and its errors, through `train`."""

import tomllib

from conftest import assert_input_error
from lmforge.config import field_docs
from lmforge.training.config import TrainConfig


def test_precedence_and_the_resolved_config(prepared, cli, tmp_path):
    (tmp_path / "c.toml").write_text("[model]\nd_model = 64\nn_heads = 2\nmax_seq_len = 32\n"
                                     "[train]\nlr = 0.005\nbatch_size = 3\n")
    result = cli("train", "--data", prepared["shards"], "--out", tmp_path / "run", "--preset", "tiny",
                 "--config", tmp_path / "c.toml", "--lr", "0.001", "--max-steps", "1", "--threads", "1")
    assert result.code == 0, result.err
    resolved = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert resolved["model"]["n_layers"] == 4          # preset
    assert resolved["model"]["d_model"] == 64          # file over preset
    assert resolved["model"]["vocab_size"] == 320      # from the shards
    assert resolved["train"]["batch_size"] == 3        # file over default
    assert resolved["train"]["lr"] == 0.001            # flag over file
    assert resolved["data"]["tokenizer_sha256"]


def test_config_file_errors(prepared, cli, tmp_path):
    (tmp_path / "bad.toml").write_text("[model\nd_model = 64")
    assert_input_error(cli("train", "--data", prepared["shards"], "--out", tmp_path / "a", "--config",
                           tmp_path / "bad.toml"), "bad.toml", "malformed TOML")
    (tmp_path / "unknown.toml").write_text("[train]\nlearning_rate = 0.1\n")
    assert_input_error(cli("train", "--data", prepared["shards"], "--out", tmp_path / "b", "--config",
                           tmp_path / "unknown.toml"), "unknown TrainConfig field", "learning_rate")
    (tmp_path / "type.toml").write_text("[train]\nbatch_size = 'many'\n")
    assert_input_error(cli("train", "--data", prepared["shards"], "--out", tmp_path / "c", "--config",
                           tmp_path / "type.toml"), "batch_size must be int")
    assert_input_error(cli("train", "--data", prepared["shards"], "--out", tmp_path / "d", "--preset", "huge"),
                       "--preset 'huge'")


def test_every_config_field_is_documented():
    docs = field_docs(TrainConfig)
    assert docs["batch_size"].startswith("Sequences per device")
    from dataclasses import fields

    assert all(docs.get(f.name) for f in fields(TrainConfig))
