"""Translation end to end on a copy task: prepare pairs -> joint tokenizer -> train (Transformer, GRU with and
without attention) -> translate (beam, n-best, files, attention maps, alignments) -> eval -> compare, and the
bad input of each step."""

from __future__ import annotations

import json

import pytest

from conftest import COPY_GRU, COPY_TRAIN, COPY_TRANSFORMER, TINY_MODEL, TINY_TRAIN, assert_input_error
from lmforge.cli import main


@pytest.fixture(scope="session")
def copy_runs(copy_pairs):
    root = copy_pairs["root"]
    common = ["--data", str(copy_pairs["data"]), "--tokenizer", str(copy_pairs["tokenizer"]), *COPY_TRAIN,
              "--eval-every", "100"]
    runs = {"tfm": [*COPY_TRANSFORMER, "--max-steps", "400"], "gru": [*COPY_GRU, "--max-steps", "300"],
            "none": [*COPY_GRU, "--attention", "none", "--max-steps", "5"]}
    for name, args in runs.items():
        assert main(["train", *common, *args, "--out", str(root / name)]) == 0
    return {name: root / name for name in runs}


@pytest.mark.parametrize("name", ["tfm", "gru"])
def test_the_copy_task_is_learned(copy_runs, cli, name):
    result = cli("eval", "--run", copy_runs[name], "--split", "test", "--max-pairs", "100", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["chrf"] > 90 and report["bleu"] > 85, report["bleu_detail"]
    assert report["bleu_signature"].startswith("BLEU|nrefs:1") and "chrF2|" in report["chrf_signature"]
    assert len(report["per_sentence"]) == 100 and {"source", "reference", "hypothesis", "bleu", "chrf"} <= \
        set(report["per_sentence"][0])
    assert "BLEU" in result.err and "chrF" in result.err


def test_translate_beam_n_best_and_files(copy_runs, cli, tmp_path):
    result = cli("translate", "--run", copy_runs["tfm"], "b c d e", "p a", "--beam", "4", "--n-best", "3", "--json")
    assert result.code == 0, result.err
    translations = result.json()["translations"]
    assert [t["text"] for t in translations] == ["b c d e", "p a"]
    hypotheses = translations[0]["hypotheses"]
    assert len(hypotheses) == 3 and len({h["text"] for h in hypotheses}) == 3
    assert [h["score"] for h in hypotheses] == sorted((h["score"] for h in hypotheses), reverse=True)
    (tmp_path / "in.txt").write_text("a b\n\nc d e\n", encoding="utf-8")
    result = cli("translate", "--run", copy_runs["gru"], "--input", tmp_path / "in.txt", "--beam", "1")
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["a b", "", "c d e"]


def test_attention_maps_and_alignments(copy_runs, cli, tmp_path):
    result = cli("translate", "--run", copy_runs["gru"], "a b c d e f", "--attention-map", tmp_path / "att.png",
                 "--align", "--json")
    assert result.code == 0, result.err
    translation = result.json()["translations"][0]
    assert (tmp_path / "att.png").stat().st_size > 1000
    pairs = [tuple(map(int, p.split("-"))) for p in translation["alignment"].split()]
    assert sum(i == j for i, j in pairs) >= 5        # a copy attends to the word it copies
    result = cli("translate", "--run", copy_runs["tfm"], "a b", "c d", "--attention-map", tmp_path / "t.png",
                 "--heads", "all")
    assert result.code == 0, result.err
    assert (tmp_path / "t-1.png").exists() and (tmp_path / "t-2.png").exists()


def test_compare_translation_runs(copy_runs, cli, tmp_path):
    result = cli("compare", copy_runs["gru"], copy_runs["tfm"], "--out", tmp_path / "c.png", "--max-pairs", "50",
                 "--json")
    assert result.code == 0, result.err
    rows = result.json()["runs"]
    assert [r["family"] for r in rows] == ["seq2seq-gru", "transformer"] and all(r["chrf"] > 80 for r in rows)
    assert (tmp_path / "c.png").exists() and "chrF" in result.err


def test_back_translation_paraphrases_through_two_runs(copy_runs):
    from lmforge.applications.translation import round_trip
    from lmforge.tasks.augment import augment_examples
    from lmforge.tasks.data import Example

    paraphrase = round_trip([copy_runs["tfm"], copy_runs["gru"]])
    examples = [Example(text="a b c", label="x"), Example(text="d e", label="y")]
    augmented = augment_examples(examples, "back-translate", 2.0, 1, paraphrase=paraphrase)
    assert len(augmented) == 4
    assert [e.label for e in augmented[2:]] == ["x", "y"] and all("back-translated" in e.source for e in augmented[2:])


def test_bad_translation_input(copy_runs, copy_pairs, prepared, cli, tmp_path):
    assert_input_error(cli("translate", "--run", copy_runs["tfm"], "a", "--beam", "0"), "--beam")
    assert_input_error(cli("translate", "--run", copy_runs["none"], "a b", "--attention-map", tmp_path / "x.png"),
                       "--attention none")
    lm = tmp_path / "lm"
    trained = cli("train", "--data", prepared["shards"], "--out", lm, *TINY_MODEL, *TINY_TRAIN, "--max-steps", "2")
    assert trained.code == 0
    assert_input_error(cli("translate", "--run", lm, "hello"), "does not translate", "lmforge generate")
    assert_input_error(cli("generate", "--run", copy_runs["tfm"], "--prompt", "a"), "translation run", "translate")
    long = " ".join(["a"] * 40)
    result = cli("translate", "--run", copy_runs["tfm"], long, "--beam", "1")
    assert result.code == 0 and "longer than the model's max_seq_len" in result.err
    (tmp_path / "en.txt").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "de.txt").write_text("eins\n", encoding="utf-8")
    assert_input_error(cli("prepare", tmp_path / "en.txt", tmp_path / "de.txt", "--pairs", "--out", tmp_path / "p"),
                       "2 lines", "1")
    (tmp_path / "half.jsonl").write_text(json.dumps({"src": "a b", "tgt": "a b"}) + "\n" + json.dumps({"src": "c"}) +
                                         "\n" + json.dumps({"src": "d e", "tgt": "d e"}) + "\n", encoding="utf-8")
    result = cli("prepare", tmp_path / "half.jsonl", "--pairs", "--out", tmp_path / "half", "--val-fraction", "0",
                 "--test-fraction", "0")
    assert result.code == 0 and "missing_side" in result.err and "1" in result.err
    assert_input_error(cli("train", "--data", tmp_path / "half", "--model", "transformer", "--out", tmp_path / "t"),
                       "--tokenizer")
