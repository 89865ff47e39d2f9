"""Issue 19's small things, each with the input that showed it: Chinese generated word by word, neighbours of
an unknown word, a one-class slice's macro-F1, word2vec's default passes on a small corpus, and compare's
<unk> mark on neural and n-gram runs alike."""

import numpy as np
from tests.conftest import assert_input_error
from tests.embeddings.test_training import clustered_lines

from lmforge.embeddings.train import word2vec_epochs
from lmforge.evaluation.task_report import classify_report
from lmforge.tokenization.words import join_words, split_words


def test_chinese_words_join_without_spaces():
    text = "交通方便，房间比较干静宽敞。Free wifi, good breakfast."
    assert join_words(split_words(text)) == "交通方便，房间比较干静宽敞。Free wifi , good breakfast ."
    assert join_words(["我", "喜欢", "Python", "和", "C"]) == "我喜欢Python和C"


def test_ngram_generate_on_chinese_has_no_spaces_between_characters(tmp_path, cli):
    (tmp_path / "zh.txt").write_text("交通方便，房间比较干静宽敞。\n服务员态度很好，早餐种类也不少。\n" * 30)
    assert cli("ngram", "train", tmp_path / "zh.txt", "--out", tmp_path / "ng", "--order", "3").code == 0
    generated = cli("generate", "--run", tmp_path / "ng", "--prompt", "交通", "--max-new-tokens", "8", "--seed", "1")
    assert generated.code == 0, generated.err
    assert " " not in generated.out.strip() and generated.out.startswith("交通")


def test_neighbours_of_an_unknown_word_is_an_error(tmp_path, cli):
    (tmp_path / "c.txt").write_text("\n".join(clustered_lines(200)))
    assert cli("embed", "train", tmp_path / "c.txt", "--out", tmp_path / "w2v", "--dim", "16", "--min-count",
               "1").code == 0
    known = open(tmp_path / "c.txt").read().split()[0]
    assert cli("embed", "neighbours", tmp_path / "w2v", known).code == 0
    assert_input_error(cli("embed", "neighbours", tmp_path / "w2v", known, "zzzunknown"), "zzzunknown",
                       "not in the vocabulary")


def test_a_one_class_slice_reads_its_own_f1():
    gold = np.array([0] * 100 + [1] * 100)
    predicted = gold.copy()
    predicted[0] = 1   # one mistake in class 0's slice
    probabilities = np.eye(2)[predicted]
    report = classify_report(probabilities, gold, ["neg", "pos"], slices=["neg"] * 100 + ["pos"] * 100)
    neg = report["slices"]["slices"]["neg"]
    assert neg["accuracy"] == 0.99 and neg["classes"] == 1
    assert neg["macro_f1"] == np.float64(2 * 99 / (2 * 99 + 1))   # the F1 of the class it holds, not 0.33


def test_word2vec_reads_a_small_corpus_more_times():
    assert word2vec_epochs(230_000) == 20 and word2vec_epochs(1_000_000) == 10
    assert word2vec_epochs(2_000_000) == 5 and word2vec_epochs(50_000_000) == 5


def test_a_neural_run_counts_its_unknown_tokens_as_an_ngram_run_does(tmp_path, cli):
    from tests.conftest import TINY_MODEL, TINY_TRAIN, write_corpus

    corpus = write_corpus(tmp_path / "corpus")
    assert cli("prepare", corpus, "--out", tmp_path / "data", "--val-fraction", "0.2", "--tokenizer", "char",
               "--vocab-size", "24").code == 0   # too few characters: the rarer ones are <|unk|>
    shards = next((tmp_path / "data" / "tokens").iterdir())
    assert cli("train", "--data", shards, "--out", tmp_path / "gpt", *TINY_MODEL, *TINY_TRAIN, "--max-steps",
               "3").code == 0
    evaluated = cli("eval", "--run", tmp_path / "gpt", "--json").json()
    assert evaluated["oov_tokens"] > 0
    compared = cli("compare", tmp_path / "gpt", "--out", tmp_path / "compare.png")
    table = compared.out + compared.err
    assert compared.code == 0 and "*" in table and "--kind byte" in table
