"""What a newcomer hit in the landed code: silent overwrites, private file modes, device tracebacks,
a `--` stop string. Each test feeds the exact input."""

import json
import os
import stat

from conftest import TINY_MODEL, TINY_TRAIN, assert_input_error


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_respect_the_umask(prepared, cli, tmp_path):
    old = os.umask(0o022)
    try:
        assert cli("train", "--data", prepared["shards"], "--out", tmp_path / "run", *TINY_MODEL, *TINY_TRAIN,
                   "--max-steps", "2").code == 0
        assert cli("tokenize", prepared["data"], "--tokenizer", prepared["tokenizer"], "--out",
                   tmp_path / "shards").code == 0
    finally:
        os.umask(old)
    run = tmp_path / "run"
    for path in (run / "config.toml", run / "model.safetensors", run / "checkpoints" / "step_00000002" / "state.json",
                 run / "checkpoints" / "step_00000002" / "model.safetensors", tmp_path / "shards" / "meta.json"):
        assert mode(path) == 0o644, (path, oct(mode(path)))


def test_tokenizer_and_shards_are_not_replaced_without_overwrite(prepared, cli, tmp_path):
    tok = tmp_path / "tok"
    assert cli("tokenizer", "train", prepared["data"], "--kind", "char", "--vocab-size", "64", "--out", tok).code == 0
    before = (tok / "tokenizer.json").read_bytes()
    assert_input_error(cli("tokenizer", "train", prepared["data"], "--kind", "bpe", "--vocab-size", "300",
                           "--out", tok), "already there", "--overwrite")
    assert (tok / "tokenizer.json").read_bytes() == before
    assert cli("tokenizer", "train", prepared["data"], "--kind", "bpe", "--vocab-size", "300", "--out", tok,
               "--overwrite").code == 0
    assert cli("tokenize", prepared["data"], "--tokenizer", tok, "--out", tmp_path / "shards").code == 0
    meta = (tmp_path / "shards" / "meta.json").read_bytes()
    assert_input_error(cli("tokenize", prepared["data"], "--tokenizer", prepared["tokenizer"], "--out",
                           tmp_path / "shards"), "already holds token shards", "--overwrite")
    assert (tmp_path / "shards" / "meta.json").read_bytes() == meta


def test_a_device_this_installation_lacks_is_named(prepared, cli, tmp_path):
    import torch

    args = ["train", "--data", prepared["shards"], "--out", tmp_path / "run", *TINY_MODEL, *TINY_TRAIN,
            "--max-steps", "2"]
    assert_input_error(cli(*args, "--device", "bogus"), "not a device name", "this installation has cpu")
    if not torch.cuda.is_available():
        assert_input_error(cli(*args, "--device", "cuda"), "--device cuda: not available here", "cpu")


def test_a_double_dash_stop_string(cli, tmp_path):
    """A model of text full of `--` writes one; `--stop --` (either spelling) cuts the text just before it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "dashes.txt").write_text("\n\n".join("a river -- the quiet -- a road --" for _ in range(300)))
    assert cli("prepare", corpus, "--out", tmp_path / "data", "--min-chars", "5", "--val-fraction", "0.05").code == 0
    assert cli("tokenizer", "train", tmp_path / "data", "--kind", "char", "--vocab-size", "40", "--out",
               tmp_path / "tok").code == 0
    assert cli("tokenize", tmp_path / "data", "--tokenizer", tmp_path / "tok").code == 0
    assert cli("train", "--data", tmp_path / "data" / "tokens" / "tok", "--out", tmp_path / "run", *TINY_MODEL,
               *TINY_TRAIN, "--max-steps", "60", "--lr", "0.01").code == 0
    args = ["generate", "--run", tmp_path / "run", "--prompt", "a river", "--max-new-tokens", "30", "--temperature",
            "0", "--json"]
    full = cli(*args).json()["generations"][0]["text"]
    assert "--" in full
    for stop in (["--stop=--"], ["--stop", "--"]):
        result = cli(*args, *stop)
        assert result.code == 0, result.err
        generation = result.json()["generations"][0]
        assert generation["text"] == full[:full.index("--")] and generation["stop_reason"] == "stop_string"


def test_the_stop_string_reaches_generate_as_two_dashes():
    from lmforge.cli import _stop_string_dashes, build_parser

    for stop in (["--stop=--"], ["--stop", "--"]):
        argv = _stop_string_dashes(["generate", "--run", "r", *stop, "--stop", "END"])
        parser, _ = build_parser(argv)
        assert parser.parse_args(argv).stop == ["--", "END"]


def test_a_test_split_from_test_sources_for_eval(prepared, cli, tmp_path):
    from conftest import write_corpus

    corpus = write_corpus(tmp_path / "corpus", docs=80, seed=4)
    held = tmp_path / "held"
    held.mkdir()
    first = (corpus / "c.jsonl").read_text().splitlines()[0]
    (held / "t.jsonl").write_text(first + "\n")          # also in the training sources: train loses its copy
    assert cli("prepare", corpus, "--test-source", held, "--out", tmp_path / "data", "--min-chars", "10").code == 0
    stats = json.loads((tmp_path / "data" / "stats.json").read_text())
    assert stats["docs_out"]["test"] == 1 and stats["dedup"]["exact_removed"] == 1
    assert cli("tokenize", tmp_path / "data", "--tokenizer", prepared["tokenizer"]).code == 0
    assert cli("train", "--data", prepared["shards"], "--out", tmp_path / "run", *TINY_MODEL, *TINY_TRAIN,
               "--max-steps", "2").code == 0
    shards = tmp_path / "data" / "tokens" / prepared["tokenizer"].name
    result = cli("eval", "--run", tmp_path / "run", "--data", shards, "--split", "test", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["split"] == "test" and report["unigram_bits_per_byte"] > 0 and "unigram baseline" in result.err
    assert_input_error(cli("eval", "--run", tmp_path / "run", "--split", "test"), "'test' split is empty",
                       "--test-source")


def test_an_unwritable_out_is_one_line_for_every_verb(prepared, cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file")
    bad = blocker / "out"
    cases = [("prepare", prepared["corpus"], "--out", bad, "--min-chars", "10"),
             ("tokenizer", "train", prepared["data"], "--kind", "char", "--vocab-size", "64", "--out", bad),
             ("tokenize", prepared["data"], "--tokenizer", prepared["tokenizer"], "--out", bad),
             ("train", "--data", prepared["shards"], "--out", bad, *TINY_MODEL, *TINY_TRAIN, "--max-steps", "2")]
    for args in cases:
        assert_input_error(cli(*args), str(blocker), "check that the path")


def test_bits_per_byte_counts_the_bytes_behind_unknown_tokens(prepared, cli, tmp_path):
    import numpy as np

    from lmforge.applications.evaluate import token_byte_table as _token_bytes
    from lmforge.data.shards import read_meta
    from lmforge.tokenization.tokenizer import Tokenizer

    assert cli("tokenizer", "train", prepared["data"], "--kind", "char", "--vocab-size", "10", "--out",
               tmp_path / "tok").code == 0     # 3 characters: most of the text becomes <|unk|>
    assert cli("tokenize", prepared["data"], "--tokenizer", tmp_path / "tok", "--out", tmp_path / "shards").code == 0
    tokenizer, meta = Tokenizer(tmp_path / "tok"), read_meta(tmp_path / "shards")
    val = np.asarray(meta.tokens("val"))
    table = _token_bytes(tokenizer, val, meta.splits["val"]["bytes"])
    assert table[tokenizer.unk_id] >= 1
    assert abs(table[val].sum() - meta.splits["val"]["bytes"]) < 1e-6 * meta.splits["val"]["bytes"]
    assert tokenizer.token_byte_lengths()[val].sum() < 0.8 * meta.splits["val"]["bytes"]   # what eval counted before


def test_prepare_reports_ignored_file_types_and_skips_records_without_text(cli, tmp_path):
    from conftest import write_corpus

    corpus = write_corpus(tmp_path / "corpus", docs=40)
    (corpus / "table.csv").write_text("a,b\n1,2\n")
    (corpus / "figure.png").write_bytes(b"\x89PNG\r\n")
    with open(corpus / "c.jsonl", "a") as handle:
        handle.write(json.dumps({"id": "x", "body": "no text field here"}) + "\n")
    assert_input_error(cli("prepare", corpus, "--out", tmp_path / "a", "--min-chars", "10"), "c.jsonl:41",
                       "no field 'text'", "--skip-bad-records")
    result = cli("prepare", corpus, "--out", tmp_path / "b", "--min-chars", "10", "--skip-bad-records")
    assert result.code == 0, result.err
    stats = json.loads((tmp_path / "b" / "stats.json").read_text())
    assert stats["bad_records"] == {"missing_text_field": 1}
    assert stats["skipped_files"] == {"unsupported_type": 2}
    assert stats["ignored_file_types"] == {".csv": 1, ".png": 1}
    assert "ignored 2 files of types prepare does not read" in result.err
