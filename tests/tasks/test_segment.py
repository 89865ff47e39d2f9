"""Chinese word segmentation as BMES character tagging: the conversion both ways, a tagger that learns a
planted vocabulary, and jieba as the reference baseline."""

from __future__ import annotations

import random

import pytest

from lmforge.tasks.data import Sentence
from lmforge.tasks.segment import from_bmes, to_bmes

VOCAB = [("中国", "ns"), ("人民", "n"), ("很", "d"), ("好", "a"), ("大学", "n"), ("学生", "n"), ("的", "u"),
         ("喜欢", "v"), ("读书", "v"), ("我们", "r")]


def test_bmes_round_trip_with_pos():
    sentence = Sentence(["中国", "人民", "很", "好", "研究生院"], ["ns", "n", "d", "a", "n"])
    chars = to_bmes(sentence, joint_pos=True)
    assert chars.words == list("中国人民很好研究生院")
    assert chars.tags[:4] == ["B-ns", "E-ns", "B-n", "E-n"] and chars.tags[4] == "S-d"
    assert chars.tags[-4:] == ["B-n", "M-n", "M-n", "E-n"]
    assert from_bmes(chars.words, chars.tags) == (sentence.words, sentence.tags)
    # a malformed tagging still places every character
    assert from_bmes(list("abc"), ["E", "M", "B"]) == (["a", "b", "c"], [None, None, None])


@pytest.fixture(scope="module")
def chinese(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zh")
    rng = random.Random(0)
    for split, n in (("train", 300), ("valid", 50)):
        lines = []
        for _ in range(n):
            for word, pos in rng.choices(VOCAB, k=rng.randint(3, 7)):
                lines.append(f"{word}\t{pos}")
            lines.append("")
        (folder / f"{split}.conll").write_text("\n".join(lines), encoding="utf-8")
    return folder


def test_a_tagger_learns_to_segment(cli, prepared, chinese, tmp_path):
    out = cli("finetune", "--task", "segment", "--joint-pos", "--model", "bert", "--tokenizer", prepared["tokenizer"],
              "--data", chinese, "--epochs", "6", "--batch-size", "16", "--lr", "3e-3", "--threads", "1",
              "--max-len", "64", "--out", tmp_path / "seg", "--json")
    assert out.code == 0, out.err
    report = out.json()["valid"]
    assert report["segmentation"]["f1"] >= 0.9 and report["pos_accuracy_on_gold_words"] >= 0.85
    predicted = cli("predict", "--run", tmp_path / "seg", "我们喜欢读书", "--json").json()["predictions"][0]
    assert predicted["words"] == ["我们", "喜欢", "读书"]


def test_jieba_baseline(cli, chinese, tmp_path):
    pytest.importorskip("jieba")
    out = cli("finetune", "--task", "segment", "--model", "jieba", "--data", chinese, "--out", tmp_path / "j", "--json")
    assert out.code == 0, out.err
    assert out.json()["valid"]["segmentation"]["f1"] > 0.8   # jieba knows these common words
