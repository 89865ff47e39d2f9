"""Evaluation (Spearman against scipy, analogies on planted vectors, OOV), the word2vec file formats
(loaded by gensim), initialising a neural run's embedding, and the `lmforge embed` verbs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import assert_input_error
from tests.embeddings.test_training import clustered_lines

from lmforge.embeddings.evaluate import analogy, similarity, spearman
from lmforge.embeddings.vectors import WordVectors, read_vectors, write_word2vec


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.integers(0, 5, size=50).astype(float)   # ties in b
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def planted_vectors() -> WordVectors:
    """man/woman, king/queen, paris/france, rome/italy with exact offsets, plus noise words."""
    rng = np.random.default_rng(1)
    base = {w: rng.normal(size=8) for w in ["man", "king", "paris", "rome", "x", "y", "z"]}
    gender, country = rng.normal(size=8), rng.normal(size=8)
    base["woman"], base["queen"] = base["man"] + gender, base["king"] + gender
    base["france"], base["italy"] = base["paris"] + country, base["rome"] + country
    words = list(base)
    return WordVectors(words, np.stack([base[w] for w in words]).astype(np.float32))


def test_analogy_on_planted_offsets(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(": family\nman woman king queen\nMan Woman King Queen\n: capital\nparis france rome italy\n"
                    "paris france rome unknownword\n: gram1\nx y z man\n")
    result = analogy(planted_vectors(), path)
    assert result["questions"] == 4 and result["oov_questions"] == 1
    sections = {s["section"]: s for s in result["sections"]}
    assert sections["family"]["accuracy_3cosadd"] == 1.0 and sections["capital"]["accuracy_3cosadd"] == 1.0
    assert result["semantic_3cosadd"] == 1.0


def test_similarity_with_no_known_words_reports_zero_coverage(tmp_path):
    path = tmp_path / "sim.tsv"
    path.write_text("# header\nfoo\tbar\t3.0\nbaz\tqux\t1.0\n")
    result = similarity(planted_vectors(), path)
    assert result == {"spearman": None, "pairs": 0, "oov_pairs": 2, "coverage": 0.0}


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_files_round_trip_and_load_in_gensim(tmp_path, binary):
    vectors = planted_vectors()
    path = tmp_path / ("v.bin" if binary else "v.txt")
    write_word2vec(vectors, path, binary)
    back = read_vectors(path)
    assert back.words == vectors.words
    np.testing.assert_allclose(back.vectors, vectors.vectors, rtol=1e-6)
    keyed = pytest.importorskip("gensim.models").KeyedVectors.load_word2vec_format(str(path), binary=binary)
    np.testing.assert_allclose(keyed["queen"], vectors.vectors[vectors.words.index("queen")], rtol=1e-6)


def test_glove_text_files_are_read(tmp_path):
    (tmp_path / "glove.txt").write_text("the 0.1 0.2 0.3\ncat 0.4 0.5 0.6\n")
    vectors = read_vectors(tmp_path / "glove.txt")
    assert vectors.words == ["the", "cat"] and vectors.vectors.shape == (2, 3)


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("embedtext") / "topics.txt"
    path.write_text("\n".join(clustered_lines(5, 800)) + "\n")
    return path


def test_cli_train_eval_neighbours_export_plot(cli, text, tmp_path):
    run = tmp_path / "w2v"
    # 24 equally frequent words: the default subsampling would drop 80% of them, so --sample 0
    out = cli("embed", "train", text, "--dim", "16", "--window", "3", "--epochs", "3", "--min-count", "1",
              "--sample", "0", "--workers", "1", "--out", run, "--json")
    assert out.code == 0, out.err
    assert out.json()["vocab_size"] == 24 and out.json()["words_per_s"] > 0
    sim = tmp_path / "sim.tsv"
    sim.write_text("a1\ta2\t9.0\na1\tb1\t1.0\nb3\tb4\t9.0\na5\tb6\t1.0\nzz\ta1\t3.0\n")   # topic pairs high
    questions = tmp_path / "q.txt"
    questions.write_text(": topics\na1 a2 b1 b2\nnone none none none\n")
    result = cli("embed", "eval", run, "--similarity", sim, "--analogies", questions, "--json").json()
    assert result["sim"]["pairs"] == 4 and result["sim"]["oov_pairs"] == 1 and result["sim"]["spearman"] > 0.85
    assert result["analogy"]["oov_questions"] == 1
    assert_input_error(cli("embed", "neighbours", run, "a1", "nope", "--top", "5", "--json"), "nope")
    near = cli("embed", "neighbours", run, "a1", "--top", "5", "--json").json()
    assert sum(n["word"].startswith("a") for n in near["a1"]) >= 4
    assert cli("embed", "export", run, "--format", "word2vec-binary", "--out", tmp_path / "v.bin").code == 0
    assert read_vectors(tmp_path / "v.bin").words == read_vectors(run).words
    words = tmp_path / "words.txt"
    words.write_text("a1\na2\nb1\nb2\nnotaword\n")
    shown = cli("embed", "plot", run, "--words-file", words, "--out", tmp_path / "map.png")
    assert shown.code == 0 and (tmp_path / "map.png").stat().st_size > 1000 and "notaword" in shown.err
    glove = cli("embed", "train", text, "--method", "glove", "--dim", "8", "--epochs", "3", "--min-count", "1",
                "--memory", "4M", "--out", tmp_path / "glove", "--json")
    assert glove.code == 0 and glove.json()["nonzero"] > 0


def test_cli_bad_input(cli, text, tmp_path):
    assert_input_error(cli("embed", "train", text, "--min-count", "100000", "--out", tmp_path / "a"),
                       "vocabulary is empty")
    assert_input_error(cli("embed", "train", text, "--memory", "lots", "--out", tmp_path / "a"), "--memory")
    assert_input_error(cli("embed", "train", text, "--negative", "0", "--out", tmp_path / "a"), "--negative")
    assert_input_error(cli("embed", "eval", tmp_path / "missing.bin"), "missing.bin")


def test_init_embeddings_copies_matching_tokens_and_freezes(cli, prepared, tmp_path):
    """A GPT whose embedding starts from word vectors of the same text; dimension mismatch refused."""
    vectors = tmp_path / "w2v"
    assert cli("embed", "train", prepared["data"], "--dim", "32", "--epochs", "1", "--min-count", "1",
               "--workers", "1", "--out", vectors).code == 0
    run = tmp_path / "gpt"
    trained = cli("train", "--data", prepared["shards"], "--n-layers", "1", "--d-model", "32", "--n-heads", "2",
                  "--max-seq-len", "32", "--batch-size", "4", "--max-steps", "3", "--threads", "1",
                  "--init-embeddings", vectors, "--freeze-embeddings", "--out", run)
    assert trained.code == 0, trained.err
    assert "token embeddings" in trained.err and "initialised from the vectors" in trained.err
    from safetensors.numpy import load_file

    from lmforge.tokenization.tokenizer import Tokenizer
    from lmforge.training.embedding_init import token_candidates

    weights = load_file(str(run / "model.safetensors"))
    embedding = weights[next(k for k in weights if k.startswith("embed"))]
    words = read_vectors(vectors)
    index = {w: i for i, w in enumerate(words.words)}
    tokenizer = Tokenizer(run)
    matched = 0
    for token_id in range(tokenizer.vocab_size):
        word = next((c for c in token_candidates(tokenizer.hf.id_to_token(token_id)) if c in index), None)
        if word is not None:   # frozen: still exactly the vector after training
            np.testing.assert_array_equal(embedding[token_id], words.vectors[index[word]])
            matched += 1
    assert matched >= 5   # a 320-token BPE holds few whole words; every one it holds was matched
    assert f"{matched:,} of {tokenizer.vocab_size:,} token embeddings" in trained.err
    config = json.dumps(open(run / "config.toml").read())
    assert "init_embeddings" in config
    mismatch = cli("train", "--data", prepared["shards"], "--n-layers", "1", "--d-model", "64", "--n-heads", "2",
                   "--max-seq-len", "32", "--max-steps", "1", "--init-embeddings", vectors, "--out", tmp_path / "g2")
    assert_input_error(mismatch, "32 dimensions", "64")
