"""Fine-tuning end to end on tiny planted tasks (a keyword decides the label; a word's set decides its tag),
every backbone family, the baselines, eval with slices, predict, and the bad inputs."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from tests.conftest import WORDS, assert_input_error

from lmforge.tasks.encode import WordPieces, encode_words
from lmforge.tokenization.tokenizer import Tokenizer


def keyword_examples(n: int, seed: int, noisy_group: str | None = None) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = rng.choice(["pos", "neg"])
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
        words.insert(rng.randrange(len(words) + 1), "good" if label == "pos" else "bad")
        group = "a" if i % 2 else "b"
        if noisy_group == group and rng.random() < 0.5:
            label = rng.choice(["pos", "neg"])
        out.append({"text": " ".join(words), "label": label, "group": group})
    return out


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def keyword_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keyword")
    write_jsonl(folder / "train.jsonl", keyword_examples(240, 0))
    write_jsonl(folder / "valid.jsonl", keyword_examples(60, 1))
    write_jsonl(folder / "test.jsonl", keyword_examples(60, 2, noisy_group="a"))
    return folder


@pytest.fixture(scope="module")
def tag_data(tmp_path_factory):
    """Tag = the word's half of the vocabulary (X for the first half, Y for the second)."""
    folder = tmp_path_factory.mktemp("tags")
    rng = random.Random(0)
    for split, n in (("train", 300), ("valid", 60)):
        lines = []
        for _ in range(n):
            for _ in range(rng.randint(3, 9)):
                word = rng.choice(WORDS)
                lines.append(f"{word}\t{'X' if WORDS.index(word) < len(WORDS) // 2 else 'Y'}")
            lines.append("")
        (folder / f"{split}.conll").write_text("# a comment\n" + "\n".join(lines))
    return folder


FAST = ["--epochs", "6", "--batch-size", "16", "--lr", "3e-3", "--threads", "1", "--max-len", "32"]


@pytest.mark.parametrize("family", ["bert", "gpt", "lstm"])
def test_each_family_learns_a_keyword_classifier(cli, prepared, keyword_data, tmp_path, family):
    out = cli("finetune", "--task", "classify", "--model", family, "--tokenizer", prepared["tokenizer"], "--data",
              keyword_data, *FAST, "--out", tmp_path / family, "--json")
    assert out.code == 0, out.err
    result = out.json()
    assert result["valid"]["accuracy"] >= 0.9, result["valid"]
    assert result["best_val_score"] is not None and (tmp_path / family / "model.safetensors").exists()
    assert (tmp_path / family / "confusion_valid.png").exists()
    predicted = cli("predict", "--run", tmp_path / family, "a good river", "the bad engine", "--json").json()
    assert [p["label"] for p in predicted["predictions"]] == ["pos", "neg"]


def test_bert_learns_a_tagger_and_aligns_sub_words(cli, prepared, tag_data, tmp_path):
    out = cli("finetune", "--task", "tag", "--model", "bert", "--tokenizer", prepared["tokenizer"], "--data",
              tag_data, *FAST, "--layer-decay", "0.9", "--out", tmp_path / "tagger", "--json")
    assert out.code == 0, out.err
    assert out.json()["valid"]["token_accuracy"] >= 0.9
    tagged = cli("predict", "--run", tmp_path / "tagger", "the river sleeps", "--json").json()["predictions"][0]
    assert tagged["words"] == ["the", "river", "sleeps"] and len(tagged["tags"]) == 3


def test_first_sub_token_alignment(prepared):
    tokenizer = Tokenizer(prepared["tokenizer"])
    words = ["Quietly", "unbelievable", "rivers", "!"]
    ids, starts, origin = encode_words(tokenizer, True, [words], 64)
    assert origin == [(0, 0)] and len(starts[0]) == 4 and ids[0][0] == tokenizer.cls_id
    assert ids[0][-1] == tokenizer.sep_id
    pieces = WordPieces(tokenizer).pieces(words)
    ends = [*starts[0][1:], len(ids[0]) - 1]
    for word, piece, start, end in zip(words, pieces, starts[0], ends):
        assert list(ids[0][start:end]) == piece   # each word's pieces sit between its start and the next word's
        assert tokenizer.decode(piece).strip() == word


def test_long_sentences_continue_in_further_sequences(prepared):
    tokenizer = Tokenizer(prepared["tokenizer"])
    words = [WORDS[i % len(WORDS)] for i in range(40)]
    ids, starts, origin = encode_words(tokenizer, True, [words, ["short"]], 16)
    assert all(len(i) <= 16 for i in ids) and len(ids) > 3
    assert sum(len(s) for s in starts[:-1]) == 40 and origin[-1] == (1, 0)   # every word placed once
    assert [o[1] for o in origin[:-1]] == [0, *np.cumsum([len(s) for s in starts[:-2]]).tolist()]


def test_init_from_a_pretrained_run(cli, prepared, keyword_data, tmp_path):
    pretrained = tmp_path / "gpt"
    assert cli("train", "--data", prepared["shards"], "--n-layers", "1", "--d-model", "32", "--n-heads", "2",
               "--max-seq-len", "32", "--batch-size", "4", "--max-steps", "3", "--threads", "1",
               "--out", pretrained).code == 0
    out = cli("finetune", "--task", "classify", "--init", pretrained, "--data", keyword_data, *FAST, "--out",
              tmp_path / "ft", "--json")
    assert out.code == 0, out.err
    assert out.json()["init"] == str(pretrained)
    # the backbone starts from the pretrained weights: a linear probe keeps them exactly, fine-tuning moves them
    probe = cli("finetune", "--task", "classify", "--init", pretrained, "--data", keyword_data, *FAST,
                "--freeze-backbone", "--out", tmp_path / "probe")
    assert probe.code == 0, probe.err
    from safetensors.torch import load_file

    base = load_file(str(pretrained / "model.safetensors"))
    for run, same in (("probe", True), ("ft", False)):
        tuned = load_file(str(tmp_path / run / "model.safetensors"))
        backbone = {k[len("backbone."):]: v for k, v in tuned.items() if k.startswith("backbone.")}
        assert backbone.keys() == base.keys()
        assert all(torch.equal(backbone[k], base[k]) for k in base) == same, run
    again = cli("finetune", "--task", "classify", "--init", tmp_path / "ft", "--data", keyword_data, "--out",
                tmp_path / "ft2")
    assert_input_error(again, "fine-tuned")


def test_tfidf_baseline_eval_with_a_planted_slice_gap(cli, keyword_data, tmp_path):
    run = tmp_path / "tfidf"
    out = cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", keyword_data, "--out", run,
              "--json")
    assert out.code == 0, out.err
    assert out.json()["valid"]["accuracy"] >= 0.95
    report = cli("eval", "--run", run, "--data", keyword_data / "test.jsonl", "--slice-field", "group",
                 "--positive", "pos", "--json")
    assert report.code == 0, report.err
    slices = report.json()["slices"]
    assert slices["worst_slice"] == "a" and slices["gap"] > 0.1   # group a's labels were half noise
    assert "demographic_parity_difference" in slices["fairness"]
    assert "macro-F1" in report.err and "slices by accuracy" in report.err
    labelled = cli("predict", "--run", run, "a good mountain", "--json").json()["predictions"][0]
    assert labelled["label"] == "pos" and abs(sum(labelled["probabilities"].values()) - 1) < 1e-6


@pytest.mark.parametrize("model", ["tfidf-logreg", "tfidf-svm"])
def test_multi_class_tfidf_survives_its_round_trip_through_the_run(cli, tmp_path, model):
    """Three classes: scikit-learn's coef_ is then column-major, which safetensors once wrote scrambled
    (the stored model predicted one class for everything; binary tasks were unaffected)."""
    rng = random.Random(4)
    keywords = {"pos": "good", "neg": "bad", "mid": "fine"}
    for split, n in (("train", 240), ("valid", 60)):
        records = []
        for _ in range(n):
            label = rng.choice(sorted(keywords))
            words = [rng.choice(WORDS) for _ in range(5)] + [keywords[label]]
            rng.shuffle(words)
            records.append({"text": " ".join(words), "label": label})
        write_jsonl(tmp_path / f"{split}.jsonl", records)
    out = cli("finetune", "--task", "classify", "--model", model, "--data", tmp_path, "--out", tmp_path / model,
              "--json")
    assert out.code == 0, out.err
    assert out.json()["valid"]["accuracy"] >= 0.95, out.json()["valid"]


def test_save_arrays_keeps_column_major_arrays(tmp_path):
    from safetensors.numpy import load_file

    from lmforge.artifacts import save_arrays

    array = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    save_arrays(tmp_path / "a.safetensors", {"a": array, "t": array.T}, "test")
    loaded = load_file(str(tmp_path / "a.safetensors"))
    assert np.array_equal(loaded["a"], array) and np.array_equal(loaded["t"], array.T)


def test_most_frequent_tag_baseline(cli, tag_data, tmp_path):
    out = cli("finetune", "--task", "tag", "--model", "most-frequent-tag", "--data", tag_data, "--out",
              tmp_path / "mft", "--json")
    assert out.code == 0 and out.json()["valid"]["token_accuracy"] == 1.0


def test_bad_input(cli, prepared, keyword_data, tmp_path):
    records = keyword_examples(20, 5)
    del records[7]["label"]
    write_jsonl(tmp_path / "missing.jsonl", records)
    assert_input_error(cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data",
                           tmp_path / "missing.jsonl", "--out", tmp_path / "a"), "missing.jsonl:8", "label")
    write_jsonl(tmp_path / "one.jsonl", [dict(r, label="pos") for r in keyword_examples(20, 5)])
    assert_input_error(cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data",
                           tmp_path / "one.jsonl", "--out", tmp_path / "b"), "single label")
    (tmp_path / "bad.conll").write_text("word\tTAG\nthree\tcolumns\there\n")
    assert_input_error(cli("finetune", "--task", "tag", "--model", "most-frequent-tag", "--data",
                           tmp_path / "bad.conll", "--out", tmp_path / "c"), "bad.conll:2", "columns")
    run = tmp_path / "tfidf"
    assert cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", keyword_data, "--out",
               run).code == 0
    assert_input_error(cli("predict", "--run", run, "  "), "empty text")
    unseen = tmp_path / "unseen.jsonl"
    write_jsonl(unseen, [dict(r, label="meh") if i % 5 == 0 else r for i, r in enumerate(keyword_examples(30, 9))])
    report = cli("eval", "--run", run, "--data", unseen, "--json")
    assert report.code == 0 and report.json()["unseen_labels"] == ["meh"]
    assert report.json()["unseen_label_examples"] == 6
    assert_input_error(cli("finetune", "--task", "classify", "--data", keyword_data, "--out", tmp_path / "d"),
                       "--init RUN")


def test_pairs_encode_both_texts(prepared):
    from lmforge.tasks.data import Example
    from lmforge.tasks.encode import Labels, encode_classification

    tokenizer = Tokenizer(prepared["tokenizer"])
    examples = [Example("a river", "yes", "the river"), Example("old city", "no", "new garden")]
    encoded, unseen = encode_classification(examples, tokenizer, True, 16, Labels(["no", "yes"]), False)
    first = encoded.ids[0]
    assert first[0] == tokenizer.cls_id and list(first).count(tokenizer.sep_id) == 2
    assert encoded.segments[0][-1] == 1 and encoded.segments[0][1] == 0 and encoded.labels.tolist() == [1, 0]
    assert unseen == [] and np.all(np.diff(encoded.segments[0]) >= 0)


def test_prune_reaches_the_sparsity_and_reports(cli, prepared, keyword_data, tmp_path):
    run = tmp_path / "bert"
    assert cli("finetune", "--task", "classify", "--model", "bert", "--tokenizer", prepared["tokenizer"], "--data",
               keyword_data, *FAST, "--out", run).code == 0
    out = cli("prune", "--run", run, "--sparsity", "0.5", "--out", tmp_path / "pruned", "--json")
    assert out.code == 0, out.err
    result = out.json()
    assert result["after"]["linear_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert result["after"]["nonzero_parameters"] < result["before"]["nonzero_parameters"]
    assert result["after"]["gzip_mb"] < result["before"]["gzip_mb"] and "macro_f1" in result["after_int8"]
    per_layer = cli("prune", "--run", run, "--sparsity", "0.3", "--per-layer", "--no-int8", "--out",
                    tmp_path / "p2", "--json").json()
    assert per_layer["after"]["linear_sparsity"] == pytest.approx(0.3, abs=0.01)
    predicted = cli("predict", "--run", tmp_path / "pruned", "a good river", "--json")
    assert predicted.code == 0
    assert_input_error(cli("prune", "--run", run, "--sparsity", "1.0", "--out", tmp_path / "p3"), "--sparsity")
    retrained = cli("prune", "--run", run, "--sparsity", "0.6", "--retrain-epochs", "1", "--retrain-lr", "1e-3",
                    "--no-int8", "--out", tmp_path / "p4", "--json")
    assert retrained.code == 0, retrained.err
    result = retrained.json()
    # the pruned weights stayed zero through the re-fine-tuning, and it trained on the run's own data
    assert result["after"]["linear_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert result["after_pruning"]["linear_sparsity"] == pytest.approx(0.6, abs=0.01)
    assert result["retraining"]["steps"] > 0 and "retrained" in retrained.err


def test_lstm_classifier_on_word_vectors(cli, prepared, keyword_data, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(r["text"] for r in keyword_examples(300, 7)) + "\n")
    assert cli("embed", "train", text, "--dim", "32", "--epochs", "1", "--min-count", "1", "--workers", "1",
               "--out", tmp_path / "w2v").code == 0
    out = cli("finetune", "--task", "classify", "--model", "lstm", "--tokenizer", prepared["tokenizer"],
              "--model-args", "d_embed=32", "tie_embeddings=false", "--init-embeddings", tmp_path / "w2v",
              "--freeze-embeddings", "--data", keyword_data, *FAST, "--out", tmp_path / "lstm", "--json")
    assert out.code == 0, out.err
    assert "initialised from the vectors" in out.err and out.json()["valid"]["accuracy"] >= 0.8
    assert_input_error(cli("finetune", "--task", "classify", "--model", "lstm", "--tokenizer", prepared["tokenizer"],
                           "--model-args", "d_embed", "--data", keyword_data, "--out", tmp_path / "x"), "FIELD=VALUE")


def test_layer_decay_scales_each_block():
    import torch

    from lmforge.models.bert import BERT, BERTConfig
    from lmforge.models.task import TaskHeadConfig, TaskModel
    from lmforge.training.optim import build_optimizers, layer_scales

    model = TaskModel(BERT(BERTConfig(vocab_size=50, n_layers=3, n_heads=2, d_model=16, max_seq_len=16)),
                      TaskHeadConfig("classify", 2))
    scales = layer_scales([n for n, _ in model.named_parameters()], 0.5)
    assert scales["head.out.weight"] == 1.0
    assert scales[next(n for n in scales if n.startswith("backbone.blocks.2."))] == 0.5
    assert scales[next(n for n in scales if n.startswith("backbone.blocks.0."))] == 0.125
    assert scales["backbone.embed.weight"] == 0.0625
    optimizers = build_optimizers(model, name="adamw", lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99), muon_lr=0.0,
                                  device=torch.device("cpu"), layer_decay=0.5)
    assert sorted({g["lr"] for g in optimizers.optimizers[0].param_groups}) == \
        pytest.approx([1e-3 * 0.5 ** k for k in (4, 3, 2, 1, 0)])


def test_a_single_file_dataset_reports_its_valid_split_only(cli, tmp_path):
    """Fine-tuning on one file (hash split) used to report on the whole file as 'valid'."""
    write_jsonl(tmp_path / "all.jsonl", keyword_examples(200, 11))
    out = cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", tmp_path / "all.jsonl",
              "--out", tmp_path / "r", "--json").json()
    assert out["valid"]["examples"] == out["examples"]["valid"] < 100 and out["valid"]["split"] == "valid"
    again = cli("eval", "--run", tmp_path / "r", "--json").json()   # the run's own data: the same valid split
    assert again["examples"] == out["valid"]["examples"] and again["macro_f1"] == out["valid"]["macro_f1"]


def test_a_run_finds_its_relative_data_from_another_directory(cli, tmp_path, monkeypatch):
    """A run made with a relative --data path used to fail `eval` from any other directory."""
    write_jsonl(tmp_path / "all.jsonl", keyword_examples(120, 12))
    monkeypatch.chdir(tmp_path)
    assert cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", "all.jsonl", "--out",
               "r").code == 0
    monkeypatch.chdir("/")
    assert cli("eval", "--run", tmp_path / "r").code == 0


def test_a_tokenizer_without_the_tasks_special_tokens_is_refused(cli, keyword_data, tmp_path):
    """An older tokenizer (no <|cls|>/<|sep|>) cannot join a pair: one line naming the token and the fix."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    vocab = {"<|bos|>": 0, "<|eos|>": 1, "<|pad|>": 2, "<|unk|>": 3, "good": 4, "bad": 5, "river": 6}
    old = HFTokenizer(models.WordLevel(vocab, unk_token="<|unk|>"))
    old.pre_tokenizer = pre_tokenizers.Whitespace()
    (tmp_path / "old").mkdir()
    old.save(str(tmp_path / "old" / "tokenizer.json"))
    write_jsonl(tmp_path / "pairs.jsonl", [dict(r, text2=r["text"]) for r in keyword_examples(40, 3)])
    assert_input_error(cli("finetune", "--task", "pair", "--model", "gpt", "--tokenizer", tmp_path / "old",
                           "--text2-field", "text2", "--data", tmp_path / "pairs.jsonl", "--out", tmp_path / "run"),
                       "<|sep|>", "retrain")


def test_hub_reader_loads_a_dataset_folder_through_datasets(cli, tmp_path):
    """`hf:` goes through `datasets.load_dataset`, which also takes a local folder of train/validation
    files: the real loading code, exercised offline (a hub name differs only in where the files come from)."""
    pytest.importorskip("datasets")
    folder = tmp_path / "hubdata"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"sentence": r["text"], "label": r["label"]} for r in keyword_examples(80, 0)])
    write_jsonl(folder / "validation.jsonl",
                [{"sentence": r["text"], "label": r["label"]} for r in keyword_examples(30, 1)])
    out = cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", f"hf:{folder}", "--text-field",
              "sentence", "--out", tmp_path / "run", "--json")
    assert out.code == 0, out.err
    result = out.json()
    assert (result["examples"]["train"], result["examples"]["valid"]) == (80, 30)
    assert result["valid"]["accuracy"] >= 0.9
