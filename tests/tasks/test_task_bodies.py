"""The task bodies trained only with a head: a BiLSTM/BiGRU encoder and a fastText-style bag of n-grams,
on a word tokenizer of the training texts."""

from __future__ import annotations

import numpy as np
import pytest
import tomllib
import torch
import torch.nn.functional as F
from tests.conftest import assert_input_error
from tests.tasks.test_finetune import keyword_examples, write_jsonl

from lmforge.models.bag_of_ngrams import BagConfig, BagOfNgrams, ngram_buckets
from lmforge.models.birnn import BiRNNConfig, BiRNNEncoder, match_features
from lmforge.models.task import TaskHeadConfig, TaskModel
from lmforge.tasks.batches import task_logits
from lmforge.tasks.encode import IGNORE, Encoded
from lmforge.tasks.table import TASKS, VALIDATION_CHUNK
from lmforge.tokenization.tokenizer import Tokenizer

FAST = ["--epochs", "8", "--batch-size", "16", "--threads", "1", "--max-len", "32"]


@pytest.fixture(scope="module")
def keyword_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keyword")
    write_jsonl(folder / "train.jsonl", keyword_examples(240, 0))
    write_jsonl(folder / "valid.jsonl", keyword_examples(60, 1))
    return folder


def test_bilstm_states_of_a_row_do_not_depend_on_its_padding():
    torch.manual_seed(0)
    model = BiRNNEncoder(BiRNNConfig(vocab_size=20, d_embed=8, d_model=12, dropout=0.0)).eval()
    row = torch.tensor([[3, 4, 5]])
    alone = model.hidden(row, torch.ones_like(row, dtype=torch.bool))
    padded = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    both = model.hidden(padded, mask)
    assert both.shape == (2, 5, 12)
    # the right-to-left half starts at the last real token, not at the padding
    torch.testing.assert_close(both[0, :3], alone[0])
    assert both[0, 3:].abs().max() == 0


def test_match_features_mark_the_tokens_the_other_text_holds():
    """[CLS] q1 q2 [SEP] | p1 p2 [SEP] pad, worked by hand: 6 is in both texts, 5 and 7 in one, [SEP] ends
    both; the padding (id 6 as well) marks nothing and matches nothing."""
    tokens = torch.tensor([[1, 5, 6, 2, 6, 7, 2, 6]])
    segments = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    features = match_features(tokens, mask, segments)
    assert features[0, :, 0].tolist() == [0, 0, 1, 1, 1, 0, 1, 0]   # occurs in the other text
    assert features[0, :, 1].tolist() == [0, 0, 0, 0, 1, 1, 1, 0]   # in the second text
    assert match_features(tokens, mask, None).abs().sum() == 0


def test_match_features_widen_the_recurrent_input_and_leave_the_plain_encoder_alone():
    torch.manual_seed(0)
    plain = BiRNNEncoder(BiRNNConfig(vocab_size=20, d_embed=8, d_model=12, dropout=0.0)).eval()
    torch.manual_seed(0)
    matching = BiRNNEncoder(BiRNNConfig(vocab_size=20, d_embed=8, d_model=12, dropout=0.0, match_features=True))
    assert plain.rnn.input_size == 8 and matching.rnn.input_size == 10
    tokens, mask = torch.tensor([[3, 4, 5, 4]]), torch.ones(1, 4, dtype=torch.bool)
    torch.testing.assert_close(plain.hidden(tokens, mask, torch.tensor([[0, 0, 1, 1]])), plain.hidden(tokens, mask))
    matching.eval()
    two, three = torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 1, 1, 1]])
    assert (matching.hidden(tokens, mask, two) - matching.hidden(tokens, mask, three)).abs().max() > 0   # read


def test_pairs_for_a_left_to_right_reader_mark_the_second_text(prepared):
    """a [SEP] b [EOS]: segments 0 up to the separator, 1 after, so a BiLSTM's match features see two texts."""
    from lmforge.tasks.encode import encode_texts

    tokenizer = Tokenizer(prepared["tokenizer"])
    ids, segments = encode_texts(tokenizer, False, ["the cat sat"], ["a cat ran"], 64)
    a = len(tokenizer.encode_batch(["the cat sat"])[0])
    assert ids[0][a] == tokenizer.special_ids["sep"] and ids[0][-1] == tokenizer.special_ids["eos"]
    assert segments[0].tolist() == [0] * (a + 1) + [1] * (len(ids[0]) - a - 1)
    assert encode_texts(tokenizer, False, ["the cat sat"], None, 64)[1] is None


def test_ngram_buckets_depend_on_the_tokens_and_their_order_not_the_position():
    tokens = torch.tensor([[5, 6, 7, 5, 6], [6, 5, 6, 5, 9]])
    buckets = ngram_buckets(tokens, 2, 1000, start_id=50)
    assert buckets[0, 1] == buckets[0, 4]          # (5, 6) at two positions
    assert buckets[1, 2] == buckets[0, 1]          # and in another row
    assert buckets[1, 1] != buckets[0, 1]          # (6, 5) is another bigram
    assert int(buckets.min()) >= 0 and int(buckets.max()) < 1000
    trigrams = ngram_buckets(tokens, 3, 1000, start_id=50)
    assert trigrams[0, 2] == ngram_buckets(torch.tensor([[5, 6, 7]]), 3, 1000, start_id=50)[0, 2]


def test_bag_of_ngrams_mean_is_the_average_of_word_and_bigram_embeddings():
    model = BagOfNgrams(BagConfig(vocab_size=10, d_model=4, ngrams=2, buckets=16))
    tokens = torch.tensor([[1, 2, 3]])
    hidden = model.hidden(tokens, torch.ones_like(tokens, dtype=torch.bool))
    bigrams = ngram_buckets(tokens, 2, 16, start_id=10)[0]
    expected = model.embed.weight[[1, 2, 3]] + model.ngram_embed.weight[bigrams]
    torch.testing.assert_close(hidden[0], expected)


@pytest.mark.parametrize("family", ["fasttext", "bilstm"])
def test_task_bodies_learn_a_keyword_classifier_on_their_own_word_tokenizer(cli, keyword_data, tmp_path, family):
    run = tmp_path / family
    out = cli("finetune", "--task", "classify", "--model", family, "--data", keyword_data, *FAST, "--out", run,
              "--json")
    assert out.code == 0, out.err
    assert out.json()["valid"]["accuracy"] >= 0.9, out.json()["valid"]
    assert Tokenizer(run).kind == "word"
    predicted = cli("predict", "--run", run, "A GOOD river", "the bad engine", "--json").json()
    assert [p["label"] for p in predicted["predictions"]] == ["pos", "neg"]
    again = cli("eval", "--run", run, "--json")
    assert again.code == 0 and again.json()["accuracy"] == out.json()["valid"]["accuracy"]


def test_bilstm_tagger_keeps_case_and_learns_tags(cli, tmp_path):
    import random

    from tests.conftest import WORDS

    rng = random.Random(0)
    for split, n in (("train", 300), ("valid", 60)):
        lines = []
        for _ in range(n):
            for _ in range(rng.randint(3, 9)):
                word = rng.choice(WORDS)
                capital = rng.random() < 0.3
                lines.append(f"{word.title() if capital else word}\t{'NAME' if capital else 'WORD'}")
            lines.append("")
        (tmp_path / f"{split}.conll").write_text("\n".join(lines))
    out = cli("finetune", "--task", "tag", "--model", "bilstm", "--data", tmp_path, *FAST, "--lr", "5e-3",
              "--out", tmp_path / "run", "--json")
    assert out.code == 0, out.err
    assert out.json()["valid"]["token_accuracy"] >= 0.95, out.json()["valid"]
    tagged = cli("predict", "--run", tmp_path / "run", "the River sleeps", "--json").json()["predictions"][0]
    assert tagged["tags"] == ["WORD", "NAME", "WORD"]


def test_task_bodies_are_not_language_models(cli, prepared, tmp_path):
    out = cli("train", "--model", "bilstm", "--data", prepared["shards"], "--out", tmp_path / "x")
    assert out.code == 2 and "bilstm" in out.err


def test_chunks_read_the_end_of_a_long_text(cli, tmp_path):
    """The label's keyword sits after the first --max-len tokens: cut texts cannot learn it; texts read as
    windows (--chunks) can, and a prediction averages the windows."""
    import random

    from tests.conftest import WORDS

    rng = random.Random(2)
    for split, n in (("train", 200), ("valid", 60)):
        records = []
        for _ in range(n):
            label = rng.choice(["pos", "neg"])
            words = [rng.choice(WORDS) for _ in range(30)] + ["good" if label == "pos" else "bad"]
            records.append({"text": " ".join(words), "label": label})
        write_jsonl(tmp_path / f"{split}.jsonl", records)
    args = ["finetune", "--task", "classify", "--model", "fasttext", "--data", tmp_path, "--max-len", "12",
            "--epochs", "8", "--threads", "1", "--json"]
    cut = cli(*args, "--out", tmp_path / "cut").json()
    windows = cli(*args, "--chunks", "4", "--out", tmp_path / "windows")
    assert windows.code == 0, windows.err
    assert cut["valid"]["accuracy"] < 0.75 and windows.json()["valid"]["accuracy"] >= 0.85
    assert windows.json()["examples"]["valid"] == 60 and windows.json()["notes"]["valid"]["windows"] == 180
    texts = [" ".join(["river"] * 30 + [keyword]) for keyword in ("good", "bad")]
    good, bad = cli("predict", "--run", tmp_path / "windows", *texts, "--json").json()["predictions"]
    assert good["probabilities"]["pos"] > bad["probabilities"]["pos"]   # the last window decides
    assert_input_error(cli(*args, "--chunks", "0", "--out", tmp_path / "x"), "--chunks")


def test_encode_chunks_spreads_windows_and_means_map_back():
    import numpy as np

    from lmforge.tasks.encode import encode_chunks, mean_by_origin

    class Words:   # one token per word, ids = word lengths; cls 1, sep 2, eos 3
        special_ids = {"cls": 1, "sep": 2, "eos": 3}

        def require(self, *roles, purpose):
            pass

        def encode_batch(self, texts):
            return [[len(w) + 10 for w in t.split()] for t in texts]

    ids, origin = encode_chunks(Words(), True, ["a bb ccc dddd eeeee ffffff ggggggg", "a"], 4, 3)
    # windows of 2 tokens: [11 12] [13 14] [15 16] [17]; 3 spread evenly keep the first, one middle, the last
    assert [list(i) for i in ids] == [[1, 11, 12, 2], [1, 15, 16, 2], [1, 17, 2], [1, 11, 2]]
    assert origin[-1] == (1, 0) and [o[0] for o in origin] == [0, 0, 0, 1]
    means = mean_by_origin(np.array([[1.0, 0], [3, 0], [5, 0], [7, 7]]), origin)
    assert means.tolist() == [[3.0, 0.0], [7.0, 7.0]]


def test_sparse_table_gradients_clip_like_dense_ones_and_train_with_sparse_adam():
    from torch import nn

    from lmforge.models.task import TaskHeadConfig, TaskModel
    from lmforge.training.optim import build_optimizers, clip_gradients

    torch.manual_seed(0)
    pair = [nn.Embedding(10, 3, sparse=sparse) for sparse in (True, False)]
    pair[1].weight.data.copy_(pair[0].weight.data)
    for table in pair:
        (table(torch.tensor([1, 1, 4])) * torch.tensor([1.0, 2.0, 3.0])[:, None]).sum().backward()
    norms = [clip_gradients(list(t.parameters()), 0.5) for t in pair]   # the repeated row 1 is summed first
    assert norms[0] == pytest.approx(norms[1], rel=1e-6) and norms[0] > 0.5
    torch.testing.assert_close(pair[0].weight.grad.to_dense(), pair[1].weight.grad)
    model = TaskModel(BagOfNgrams(BagConfig(vocab_size=10, d_model=4, buckets=16)), TaskHeadConfig(n_labels=2))
    optimizers = build_optimizers(model, name="adamw", lr=1e-2, weight_decay=0.01, betas=(0.9, 0.99), muon_lr=0.0,
                                  device=torch.device("cpu"))
    kinds = [type(o).__name__ for o in optimizers.optimizers]
    assert kinds == ["AdamW", "SparseAdam"]
    assert {id(p) for p in optimizers.optimizers[1].param_groups[0]["params"]} == \
        {id(model.backbone.embed.weight), id(model.backbone.ngram_embed.weight)}


def test_character_ngrams_are_hashed_per_vocabulary_entry_and_saved_with_the_run(cli, keyword_data, tmp_path):
    from lmforge.models.bag_of_ngrams import char_ngram_table, fnv1a

    assert fnv1a("") == 2166136261 and fnv1a("a") == 0xE40C292C   # the published FNV-1a test vectors
    table = char_ngram_table(["ab", ""], 2, 3, 1000, 8)
    # "<ab>": <a ab b> then <ab ab>; the empty (special) token has none
    assert table[0, :5].tolist() == [fnv1a(g) % 1000 for g in ("<a", "ab", "b>", "<ab", "ab>")]
    assert table[0, 5:].tolist() == [-1, -1, -1] and table[1].tolist() == [-1] * 8
    run = tmp_path / "chars"
    out = cli("finetune", "--task", "classify", "--model", "fasttext", "--model-args", "min_char_ngram=2",
              "max_char_ngram=4", "--data", keyword_data, *FAST, "--out", run, "--json")
    assert out.code == 0, out.err
    assert out.json()["valid"]["accuracy"] >= 0.9
    again = cli("eval", "--run", run, "--json")   # the table is a buffer of the weights file
    assert again.code == 0 and again.json()["accuracy"] == out.json()["valid"]["accuracy"]


def test_fasttext_defaults_follow_the_training_texts():
    from lmforge.applications.body_defaults import data_defaults
    from lmforge.tasks.data import Example

    classify = TASKS["classify"]
    short = [Example("the mic is great", "pos"), Example("no way to plug it in", "neg")] * 3
    long_ = [Example(" ".join(["word"] * 80), "pos")] * 3
    unspaced = [Example("交通方便，房间比较干静宽敞，总体来讲还说得过去。", "pos")] * 3
    assert data_defaults("fasttext", classify, short) == {"min_char_ngram": 2, "max_char_ngram": 5}
    assert data_defaults("fasttext", classify, long_) == {}
    assert data_defaults("fasttext", classify, unspaced) == {"ngrams": 3}
    assert data_defaults("bilstm", classify, short) == {}


def test_a_default_fasttext_run_records_its_character_ngrams_and_model_args_override_them(cli, keyword_data,
                                                                                          tmp_path):
    for name, extra, expected in (("default", [], 2), ("words", ["--model-args", "min_char_ngram=0",
                                                                 "max_char_ngram=0"], 0)):
        out = cli("finetune", "--task", "classify", "--model", "fasttext", *extra, "--data", keyword_data, *FAST,
                  "--out", tmp_path / name, "--json")
        assert out.code == 0, out.err
        model = tomllib.loads((tmp_path / name / "config.toml").read_text())["model"]
        assert model["min_char_ngram"] == expected and model["ngrams"] == 2


def _tagger(n_labels: int = 7):
    torch.manual_seed(0)
    return TaskModel(BiRNNEncoder(BiRNNConfig(vocab_size=30, d_embed=8, d_model=12, dropout=0.0)),
                     TaskHeadConfig(task="tag", n_labels=n_labels)).eval()


def _ragged_rows(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 30, size=int(rng.integers(1, 12))) for _ in range(n)]


def test_task_logits_in_length_batches_equal_each_row_alone():
    model, rows = _tagger(), _ragged_rows(23)
    batched = task_logits(model, rows, None, 8, torch.device("cpu"), True, 0)
    for row, logits in zip(rows, batched):
        alone = model(torch.tensor(row)[None], torch.ones((1, len(row)), dtype=torch.bool))[0].detach().numpy()
        assert logits.shape == (len(row), 7)
        torch.testing.assert_close(torch.from_numpy(logits), torch.from_numpy(alone), atol=1e-5, rtol=1e-5)


def test_tag_validation_in_chunks_equals_the_whole_split_at_once():
    rng = np.random.default_rng(1)
    rows = _ragged_rows(2 * VALIDATION_CHUNK + 37)   # three chunks, the last one short
    labels = [np.where(rng.random(len(r)) < 0.3, IGNORE, rng.integers(-1, 7, size=len(r))) for r in rows]
    logits = [rng.normal(size=(len(r), 7)).astype(np.float32) for r in rows]
    loss, accuracy, name = TASKS["tag"].validation_score(logits, Encoded(rows, None, labels), 7, False)
    gold, stacked = np.concatenate(labels), np.concatenate(logits)
    keep = gold != IGNORE   # an unseen tag (-1) is scored as tag 0 in the loss and is never right
    expected = F.cross_entropy(torch.from_numpy(stacked[keep]), torch.from_numpy(np.maximum(gold[keep], 0)))
    assert loss == pytest.approx(float(expected), rel=1e-5)
    assert accuracy == pytest.approx(float((stacked[keep].argmax(1) == gold[keep]).mean()))
    assert name == "word_accuracy" and 0 < accuracy < 0.5
