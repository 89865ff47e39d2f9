"""The prepare stage: cleaning, dedup, deterministic split, stats, and its bad inputs through the CLI."""

import gzip
import json

from conftest import assert_input_error, write_corpus
from lmforge.data.cleaning import clean_whitespace, dedup_key, normalize_unicode
from lmforge.data.documents import Document
from lmforge.data.prepare import PrepareConfig, prepare_corpus


def read_split(out, split):
    records = []
    for path in sorted((out / "clean").glob(f"{split}-*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            records += [json.loads(line) for line in handle]
    return records


def test_cleaners():
    doc = normalize_unicode(Document("Cafe\u0301", "x", "s"))
    assert doc.text == "Caf\u00e9"
    doc = clean_whitespace(Document("  a  b\r\nline \t\n\n\n\n\nnext\x07 ", "x", "s"))
    assert doc.text == "a b\nline\n\nnext"


def test_dedup_min_length_split_and_stats(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    docs = [{"text": f"document number {i} with enough words to pass"} for i in range(200)]
    docs += [{"text": "DOCUMENT number 3   with enough words to pass"}, {"text": "short"}]
    (src / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    stats = prepare_corpus([src], tmp_path / "out", PrepareConfig(val_fraction=0.2, min_chars=10))
    assert stats["docs_in"] == 202
    assert stats["rejected_docs"] == {"exact_duplicate": 1, "too_short": 1}
    train, val = read_split(tmp_path / "out", "train"), read_split(tmp_path / "out", "val")
    assert len(train) + len(val) == 200 and 15 < len(val) < 65
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["docs_out"] == {"train": len(train), "val": len(val)}
    assert list((tmp_path / "out" / "rejected" / "too_short").glob("*.jsonl.gz"))
    # the split depends on the text only: reversed input order gives the same val set
    (src / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in reversed(docs)))
    prepare_corpus([src], tmp_path / "again", PrepareConfig(val_fraction=0.2, min_chars=10))
    # (which duplicate is kept follows input order; the split of their shared text does not)
    again = read_split(tmp_path / "again", "val")
    assert sorted(dedup_key(r["text"]) for r in again) == sorted(dedup_key(r["text"]) for r in val)


def test_explicit_val_source_wins_over_train_duplicates(tmp_path):
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": f"train doc {i} " * 5}) + "\n" for i in range(20))
                                          + json.dumps({"text": "shared document text here"}) + "\n")
    (tmp_path / "val.jsonl").write_text(json.dumps({"text": "shared document text here"}) + "\n")
    prepare_corpus([tmp_path / "train.jsonl"], tmp_path / "out", PrepareConfig(min_chars=5),
                   val_sources=[tmp_path / "val.jsonl"])
    assert [r["text"] for r in read_split(tmp_path / "out", "val")] == ["shared document text here"]
    assert len(read_split(tmp_path / "out", "train")) == 20


def test_cli_prepare_and_its_errors(tmp_path, cli):
    corpus = write_corpus(tmp_path / "corpus")
    result = cli("prepare", corpus, "--out", tmp_path / "out", "--json")
    assert result.code == 0 and result.json()["docs_out"]["train"] > 0
    # a second run must not clobber what is there
    assert_input_error(cli("prepare", corpus, "--out", tmp_path / "out"), "already prepared", "--overwrite")
    assert cli("prepare", corpus, "--out", tmp_path / "out", "--overwrite").code == 0
    assert_input_error(cli("prepare", tmp_path / "missing", "--out", tmp_path / "o2"), "missing", "no such file")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "tiny.txt").write_text("hi")
    assert_input_error(cli("prepare", tmp_path / "empty", "--out", tmp_path / "o3"), "empty corpus")
    assert not (tmp_path / "o3" / "clean").exists()
    assert_input_error(cli("prepare", corpus, "--out", tmp_path / "o4", "--val-fraction", "1.5"), "--val-fraction")


def test_word_counts_of_unspaced_scripts():
    from lmforge.data.documents import count_words

    assert count_words("今天天气很好，我们去公园。") == 11       # a Chinese line is not one word
    assert count_words("用 Python 写代码") == 5
    assert count_words("plain English words") == 3
