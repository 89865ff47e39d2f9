"""Files that are not what their names say: a `.txt.gz` that is plain text, a damaged gzip in a folder,
UTF-16 with and without a byte-order mark, through `prepare`, `ngram train` and `embed train`."""

import gzip
import json

from conftest import assert_input_error

LINES = "".join(f"line {i} of a small plain text corpus for reading\n" for i in range(60))


def read_clean(out):
    texts = []
    for path in sorted((out / "clean").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            texts += [json.loads(line)["text"] for line in handle]
    return texts


def test_a_txt_gz_that_is_not_gzip_is_read_as_text_by_every_verb(tmp_path, cli):
    (tmp_path / "plain.txt.gz").write_text(LINES)
    prepared = cli("prepare", tmp_path / "plain.txt.gz", "--out", tmp_path / "data", "--val-fraction", "0")
    assert prepared.code == 0, prepared.err
    assert "named .gz but not gzip-compressed" in prepared.err and "plain.txt.gz" in prepared.err
    assert len(read_clean(tmp_path / "data")) == 60
    counted = cli("ngram", "train", tmp_path / "plain.txt.gz", "--out", tmp_path / "ngram", "--order", "2")
    assert counted.code == 0 and "named .gz but not gzip-compressed" in counted.err


def test_a_damaged_gzip_in_a_folder_is_named(tmp_path, cli):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.txt.gz").write_bytes(b"\x1f\x8b" + b"not really deflate" * 10)
    result = cli("prepare", tmp_path / "in", "--out", tmp_path / "data")
    assert_input_error(result, "broken.txt.gz", "truncated_or_corrupt")


def test_utf16_with_a_byte_order_mark_is_decoded(tmp_path, cli):
    (tmp_path / "u16.txt").write_bytes(LINES.encode("utf-16"))
    prepared = cli("prepare", tmp_path / "u16.txt", "--out", tmp_path / "data", "--val-fraction", "0")
    assert prepared.code == 0, prepared.err
    assert "UTF-16" in prepared.err
    assert read_clean(tmp_path / "data") == LINES.splitlines()
    assert not list((tmp_path / "data").rglob("*.tmp"))
    for verb in (("ngram", "train"), ("embed", "train")):
        result = cli(*verb, tmp_path / "u16.txt", "--out", tmp_path / verb[0])
        assert result.code == 0, result.err
    assert "line" in (tmp_path / "embed" / "vocab.json").read_text(encoding="utf-8")


def test_utf16_without_a_mark_says_how_to_convert_and_leaves_no_temp_file(tmp_path, cli):
    (tmp_path / "u16le.txt").write_bytes(LINES.encode("utf-16-le"))
    result = cli("prepare", tmp_path / "u16le.txt", "--out", tmp_path / "data")
    assert_input_error(result, "u16le.txt", "UTF-16", "iconv")
    assert not list(tmp_path.rglob("*.tmp"))
