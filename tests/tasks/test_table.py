"""The task table end to end: every row (classify, pair, tag, segment, qa) fine-tunes on its tiny fixture
through the same orchestration, reports its own metrics, evaluates and predicts; the verbs' options come
from documented dataclasses."""

from __future__ import annotations

import json
import random

import pytest

from conftest import WORDS, assert_input_error
from lmforge.tasks.table import TASKS


def _classify(folder, pair: bool = False):
    rng = random.Random(0)
    for split, n in (("train", 160), ("valid", 40)):
        rows = []
        for _ in range(n):
            label = rng.choice(["pos", "neg"])
            words = [rng.choice(WORDS) for _ in range(5)] + ["good" if label == "pos" else "bad"]
            row = {"text": " ".join(words), "label": label}
            if pair:
                row = {"text": " ".join(words[:3]), "text2": " ".join(words[3:]), "label": label}
            rows.append(json.dumps(row))
        (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n")


def _conll(folder, chinese: bool = False):
    rng = random.Random(1)
    vocab = [("中国", "ns"), ("人民", "n"), ("很", "d"), ("好", "a")] if chinese else \
        [(w, "X" if i < 24 else "Y") for i, w in enumerate(WORDS)]
    for split, n in (("train", 120), ("valid", 30)):
        lines = []
        for _ in range(n):
            lines += [f"{w}\t{t}" for w, t in rng.choices(vocab, k=rng.randint(3, 7))] + [""]
        (folder / f"{split}.conll").write_text("\n".join(lines), encoding="utf-8")


def _qa(folder):
    rng = random.Random(2)
    for split, n in (("train", 60), ("valid", 15)):
        rows = []
        for _ in range(n):
            answer = " ".join(rng.choice(WORDS) for _ in range(3))
            context = " ".join(rng.choice(WORDS) for _ in range(20)) + f" answer {answer} ."
            rows.append(json.dumps({"question": f"what is {answer.split()[0]}?", "context": context,
                                    "answer": answer, "answer_start": context.index(f"answer {answer}") + 7}))
        (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n")


FIXTURES = {"classify": (_classify, [], "a good river"), "pair": (lambda f: _classify(f, True),
                                                                 ["--text2-field", "text2"], "a good river"),
            "tag": (_conll, [], "the river sleeps"), "segment": (lambda f: _conll(f, True), [], "中国人民很好"),
            "qa": (_qa, [], None)}


def test_the_table_has_a_row_per_task():
    assert set(TASKS) == set(FIXTURES) == {"classify", "pair", "tag", "segment", "qa"}
    assert all(task.name == name for name, task in TASKS.items())


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_task_fine_tunes_evaluates_and_predicts_through_its_row(cli, tmp_path, name):
    write, extra, text = FIXTURES[name]
    data = tmp_path / "data"
    data.mkdir()
    write(data)
    out = tmp_path / "run"
    result = cli("finetune", "--task", name, "--model", "bilstm", "--data", data, *extra, "--epochs", "2",
                 "--batch-size", "16", "--max-len", "48", "--threads", "1", "--out", out, "--json")
    assert result.code == 0, result.err
    report = result.json()
    task = TASKS[name]
    assert report["task"] == name and report["valid"]
    assert task.summary_line("valid", report["valid"]).strip() in result.err
    assert task.headline(report["valid"])
    evaluated = cli("eval", "--run", out, "--json")
    assert evaluated.code == 0, evaluated.err
    assert task.report_table(evaluated.json()) in evaluated.err
    predict = ["--input", data / "valid.jsonl"] if text is None else [text]
    predicted = cli("predict", "--run", out, *predict, "--json")
    assert predicted.code == 0, predicted.err
    first = predicted.json()["predictions"][0]
    assert set(first) == {"classify": {"text", "label", "probabilities"}, "pair": {"text", "label", "probabilities"},
                          "tag": {"words", "tags"}, "segment": {"words", "pos"},
                          "qa": {"question", "answer"}}[name]
    shown = cli("predict", "--run", out, *predict)
    assert shown.code == 0 and task.prediction_line(first) in shown.out


def test_the_verbs_options_are_documented_dataclass_fields(capsys):
    from dataclasses import fields

    from lmforge.applications.finetune import FinetuneConfig
    from lmforge.cli import main
    from lmforge.config import field_docs

    docs = field_docs(FinetuneConfig)
    assert all(docs.get(f.name) for f in fields(FinetuneConfig))
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--task", "--text2-field", "--qa-stride", "--chunks", "--model-args", "--layer-decay", "--augment"):
        assert flag in text
    assert " ".join(docs["chunks"].split()[:8]) in text


def test_task_options_are_checked_by_their_row(cli, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _classify(data)
    common = ["--data", data, "--model", "bilstm", "--out", tmp_path / "r"]
    assert_input_error(cli("finetune", "--task", "pair", *common), "--task pair needs --text2-field")
    assert_input_error(cli("finetune", "--task", "tag", "--chunks", "2", *common), "--chunks")
    assert_input_error(cli("finetune", "--task", "classify", "--data", data, "--out", tmp_path / "r"),
                       "give --init RUN", "--model NAME")
    tags = tmp_path / "tags"
    tags.mkdir()
    _conll(tags)
    assert_input_error(cli("finetune", "--task", "tag", "--model", "tfidf-logreg", "--data", tags, "--out",
                           tmp_path / "r"), "classification baseline", "most-frequent-tag")
