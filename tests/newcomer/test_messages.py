"""Messages name flags the verb has: predict and eval read files whose fields are named otherwise, finetune
skips a few unlabelled records when asked, and a label --positive does not know is refused."""

from tests.conftest import assert_input_error
from tests.tasks.test_finetune import keyword_examples, write_jsonl


def tfidf_run(tmp_path, cli):
    write_jsonl(tmp_path / "train.jsonl", keyword_examples(120, 0))
    result = cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", tmp_path / "train.jsonl",
                 "--out", tmp_path / "run")
    assert result.code == 0, result.err
    return tmp_path / "run"


def test_predict_and_eval_read_other_field_names(tmp_path, cli):
    run = tfidf_run(tmp_path, cli)
    (tmp_path / "x.csv").write_text("body\nthis is good\n")
    assert_input_error(cli("predict", "--run", run, "--input", tmp_path / "x.csv"), "--text-field")
    predicted = cli("predict", "--run", run, "--input", tmp_path / "x.csv", "--text-field", "body", "--json")
    assert predicted.code == 0 and predicted.json()["predictions"][0]["label"] == "pos"
    write_jsonl(tmp_path / "e.jsonl", [{"body": r["text"], "lab": r["label"]} for r in keyword_examples(30, 3)])
    assert_input_error(cli("eval", "--run", run, "--data", tmp_path / "e.jsonl"), "--label-field")
    assert_input_error(cli("eval", "--run", run, "--data", tmp_path / "e.jsonl", "--label-field", "lab"),
                       "--text-field")
    evaluated = cli("eval", "--run", run, "--data", tmp_path / "e.jsonl", "--text-field", "body", "--label-field",
                    "lab", "--json")
    assert evaluated.code == 0, evaluated.err
    assert evaluated.json()["examples"] == 30


def test_finetune_skips_unlabelled_records_when_asked(tmp_path, cli):
    records = keyword_examples(120, 0) + [{"text": "no label here"}, {"label": "pos"}]
    write_jsonl(tmp_path / "train.jsonl", records)
    args = ("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", tmp_path / "train.jsonl")
    assert_input_error(cli(*args, "--out", tmp_path / "a"), "train.jsonl:121", "--skip-bad-records")
    skipped = cli(*args, "--out", tmp_path / "b", "--skip-bad-records", "--json")
    assert skipped.code == 0 and "skipped 2 records" in skipped.err
    assert sum(skipped.json()["examples"].values()) == 120


def test_positive_must_be_a_label_of_the_run(tmp_path, cli):
    run = tfidf_run(tmp_path, cli)
    assert_input_error(cli("eval", "--run", run, "--positive", "maybe"), "--positive maybe", "neg, pos")
    assert cli("eval", "--run", run, "--positive", "pos", "--json").code == 0
