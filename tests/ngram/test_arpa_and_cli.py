"""ARPA round trip and damaged files, KenLM query agreement (when the kenlm package is installed), and
the `lmforge ngram` / `eval` / `generate` verbs end to end on a corpus the test writes."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from tests.conftest import assert_input_error
from tests.ngram.test_kneser_ney import random_corpus

from lmforge.ngram.arpa import read_arpa, write_arpa
from lmforge.ngram.counting import count_corpus
from lmforge.ngram.estimate import estimate
from lmforge.ngram.model import NgramModel
from lmforge.tokenization.words import WordSplitter, split_words

WS = WordSplitter("whitespace")


@pytest.fixture(scope="module")
def tables():
    return estimate(count_corpus(random_corpus(2), WS, 3))


@pytest.mark.parametrize("name", ["m.arpa", "m.arpa.gz"])
def test_arpa_round_trip_is_exact(tables, tmp_path, name):
    write_arpa(tables, tmp_path / name)
    back = read_arpa(tmp_path / name)
    assert back.vocab == tables.vocab and back.counts() == tables.counts()
    for a, b in zip(tables.keys + tables.logp + tables.backoff, back.keys + back.logp + back.backoff):
        np.testing.assert_array_equal(a, b)
    write_arpa(back, tmp_path / ("again_" + name))
    opener = gzip.open if name.endswith(".gz") else open
    with opener(tmp_path / name, "rt") as one, opener(tmp_path / ("again_" + name), "rt") as two:
        assert one.read() == two.read()


def test_arpa_header_and_sections(tables, tmp_path):
    write_arpa(tables, tmp_path / "m.arpa")
    text = (tmp_path / "m.arpa").read_text()
    assert text.startswith("\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    unigram = next(line for line in text.splitlines() if line.endswith("\tw0\t") or "\tw0\t" in line)
    logp, word, backoff = unigram.split("\t")
    assert word == "w0" and float(logp) < 0 and float(backoff) <= 0


def test_damaged_arpa_files_are_refused(tables, tmp_path, cli):
    write_arpa(tables, tmp_path / "m.arpa")
    text = (tmp_path / "m.arpa").read_text()
    (tmp_path / "cut.arpa").write_text(text[: len(text) // 2])
    assert_input_error(cli("ngram", "import", tmp_path / "cut.arpa", "--out", tmp_path / "r1"), "truncated")
    counts = tables.counts()
    (tmp_path / "hdr.arpa").write_text(text.replace(f"ngram 2={counts[1]}", f"ngram 2={counts[1] + 5}"))
    assert_input_error(cli("ngram", "import", tmp_path / "hdr.arpa", "--out", tmp_path / "r2"), "header says")
    (tmp_path / "no.arpa").write_text("hello\n")
    assert_input_error(cli("ngram", "import", tmp_path / "no.arpa", "--out", tmp_path / "r3"), "not an ARPA")
    assert not (tmp_path / "r1").exists()


def test_kenlm_scores_our_arpa_as_we_do(tables, tmp_path):
    import kenlm  # a dev dependency: this reference check must not skip in CI
    write_arpa(tables, tmp_path / "m.arpa")
    reference = kenlm.Model(str(tmp_path / "m.arpa"))
    ours = NgramModel(read_arpa(tmp_path / "m.arpa"))
    for sentence in random_corpus(9, lines=30) + ["w1 never-seen w2", "w3"]:
        expected = reference.score(sentence, bos=True, eos=True)
        assert ours.score_sentences([sentence.split()]).logp.sum() == pytest.approx(expected, abs=1e-4)


def test_word_splitter():
    assert split_words("don't stop, the whale's") == ["don't", "stop", ",", "the", "whale's"]
    assert split_words("café 你好!") == ["café", "你", "好", "!"]
    assert split_words("a_b 3.5") == ["a", "_", "b", "3", ".", "5"]


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ngramtext")
    with gzip.open(folder / "train.txt.gz", "wt") as handle:
        handle.write("\n".join(random_corpus(4)) + "\n")
    (folder / "valid.txt").write_text("\n".join(random_corpus(5, lines=50)) + "\n")
    return folder


def test_cli_train_eval_score_generate_export_import(cli, text_corpus, tmp_path):
    run = tmp_path / "kn3"
    result = cli("ngram", "train", text_corpus / "train.txt.gz", "--words", "whitespace", "--order", "3",
                 "--out", run, "--json")
    assert result.code == 0, result.err
    assert result.json()["ngrams"][0] > 60
    evaluation = cli("eval", "--run", run, "--data", text_corpus / "valid.txt", "--json").json()
    assert evaluation["family"] == "ngram" and 1 < evaluation["perplexity"] < 200
    assert evaluation["perplexity_excluding_oov"] <= evaluation["perplexity"]
    scored = cli("ngram", "score", run, "w0 w1 w2", "--json").json()
    assert [w["word"] for w in scored["words"]] == ["w0", "w1", "w2", "</s>"]
    assert all(w["log10_prob"] < 0 for w in scored["words"])
    text = cli("ngram", "score", run, "w0 w1")
    assert "Perplexity including OOVs:" in text.out and "w0=" in text.out
    generated = cli("generate", "--run", run, "--max-new-tokens", "30", "--seed", "3", "--json").json()
    assert generated["generations"][0]["tokens"] == 30
    again = cli("generate", "--run", run, "--max-new-tokens", "30", "--seed", "3", "--json").json()
    assert again == generated
    assert cli("ngram", "export", run, "--arpa", tmp_path / "m.arpa").code == 0
    assert cli("ngram", "import", tmp_path / "m.arpa", "--words", "whitespace", "--out", tmp_path / "imp").code == 0
    imported = cli("eval", "--run", tmp_path / "imp", "--data", text_corpus / "valid.txt", "--json").json()
    assert imported["perplexity"] == pytest.approx(evaluation["perplexity"], rel=1e-6)


def test_cli_bad_input(cli, text_corpus, tmp_path):
    train = text_corpus / "train.txt.gz"
    assert_input_error(cli("ngram", "train", train, "--order", "0", "--out", tmp_path / "a"), "--order 0")
    assert_input_error(cli("ngram", "train", train, "--order", "10", "--out", tmp_path / "a"), "--order 10")
    assert_input_error(cli("ngram", "train", train, "--min-count", "100000", "--out", tmp_path / "a"),
                       "vocabulary is empty")
    assert_input_error(cli("ngram", "train", train, "--prune", "1", "0", "0", "--out", tmp_path / "a"), "--prune")
    assert_input_error(cli("ngram", "train", tmp_path / "missing", "--out", tmp_path / "a"), "missing")
    assert cli("ngram", "train", train, "--out", tmp_path / "b").code == 0
    assert_input_error(cli("ngram", "train", train, "--out", tmp_path / "b"), "--overwrite")


def test_prepared_dataset_with_a_tokenizer_compares_with_a_gpt(cli, prepared, tmp_path):
    """On a prepared dataset: words and tokenizer tokens, evaluated on its val split; bits per byte of a
    byte-level-tokenizer n-gram are over the same bytes as the GPT's, so `compare` lists both."""
    words = tmp_path / "kn3"
    out = cli("ngram", "train", prepared["data"], "--order", "3", "--out", words, "--json").json()
    assert out["val"]["bits_per_byte"] > 0 and (words / "metrics.jsonl").exists()
    tokens = tmp_path / "kn3tok"
    out = cli("ngram", "train", prepared["data"], "--order", "3", "--tokenizer", prepared["tokenizer"],
              "--out", tokens, "--json").json()
    assert out["val"]["oov_tokens"] == 0
    shard_bytes = json.loads((prepared["shards"] / "meta.json").read_text())["splits"]["val"]["bytes"]
    assert out["val"]["bytes"] == shard_bytes
    text = cli("generate", "--run", tokens, "--max-new-tokens", "20", "--seed", "1", "--json").json()
    assert text["generations"][0]["text"].strip()
    listed = cli("runs", tmp_path, "--json").json()
    assert {r["family"] for r in listed["runs"]} == {"ngram"}
    compared = cli("compare", words, tokens, "--out", tmp_path / "c.png", "--json")
    assert compared.code == 0, compared.err
    assert len(compared.json()["runs"]) == 2


def test_rank_parts_merge_into_the_single_process_model(cli, text_corpus, tmp_path):
    train = text_corpus / "train.txt.gz"
    assert cli("ngram", "train", train, "--words", "whitespace", "--order", "3", "--out", tmp_path / "one").code == 0
    for rank in range(3):
        part = cli("ngram", "train", train, "--words", "whitespace", "--order", "3", "--rank", rank,
                   "--world-size", "3", "--out", tmp_path / f"part{rank}")
        assert part.code == 0, part.err
    assert_input_error(cli("ngram", "train", "--merge", tmp_path / "part0", tmp_path / "part1", "--out",
                           tmp_path / "bad"), "missing")
    merged = cli("ngram", "train", "--merge", *(tmp_path / f"part{r}" for r in range(3)), "--out", tmp_path / "merged")
    assert merged.code == 0, merged.err
    from lmforge.ngram.store import load_ngram_run

    one, many = load_ngram_run(tmp_path / "one").model.tables, load_ngram_run(tmp_path / "merged").model.tables
    assert one.vocab == many.vocab
    for a, b in zip(one.keys + one.logp + one.backoff, many.keys + many.logp + many.backoff):
        np.testing.assert_array_equal(a, b)
