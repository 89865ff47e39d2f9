"""Readers: every format, and every kind of bad input."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lmforge.data.readers import ReadOptions, list_input_files, read_documents
from lmforge.errors import InputError


def read_all(path, **options):
    opts = ReadOptions(**options)
    return list(read_documents(list_input_files([path]), opts)), opts.report


def test_reads_text_markdown_jsonl_gz_and_parquet(tmp_path):
    (tmp_path / "a.txt").write_text("plain text file\n")
    (tmp_path / "b.md").write_text("# heading\n\nmarkdown body\n")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"body": "from jsonl"}) + "\n\n" + json.dumps({"body": "second"}) + "\n")
    pq.write_table(pa.table({"body": ["from parquet", None], "n": [1, 2]}), tmp_path / "d.parquet")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    (tmp_path / "e.txt").write_text("x")
    docs, report = read_all(tmp_path, text_field="body")
    texts = [d.text for d in docs]
    assert texts == ["plain text file\n", "# heading\n\nmarkdown body\n", "from jsonl", "second", "from parquet", "x"]
    assert report.files == 5
    assert report.bad_records == {"text_not_a_string": 1}
    assert docs[2].source.endswith("c.jsonl.gz") and docs[2].meta == {"line": 1}


def test_long_text_file_is_cut_at_blank_lines(tmp_path):
    paragraph = "word " * 2000
    (tmp_path / "book.txt").write_text("\n\n".join([paragraph] * 40))
    docs, _ = read_all(tmp_path / "book.txt", doc_split="chars:16000")   # the book mode (was the only one)
    assert len(docs) > 3
    assert "".join(d.text for d in docs) == "\n\n".join([paragraph] * 40)


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"good start \xff\xfe bad bytes\n")
    docs, report = read_all(tmp_path / "bad.txt")
    assert "\ufffd" in docs[0].text
    assert report.docs_with_invalid_utf8 == 1


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(InputError, match=r"x.jsonl:2: malformed JSON.*--skip-bad-records"):
        read_all(path)
    docs, report = read_all(path, skip_bad_records=True)
    assert [d.text for d in docs] == ["ok"] and report.bad_records == {"malformed_json": 1}


def test_jsonl_without_the_text_field(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"content": "ok"}\n')
    with pytest.raises(InputError, match=r"no field 'text' \(found \['content'\]\); pass --text-field"):
        read_all(path)


def test_parquet_without_the_text_column(tmp_path):
    pq.write_table(pa.table({"content": ["a"]}), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="no column 'text'"):
        read_all(tmp_path / "x.parquet")


def test_binary_file_is_refused_or_skipped(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError, match="binary file"):
        read_all(path)
    docs, report = read_all(path, skip_bad_records=True)
    assert docs == [] and report.skipped_files == {"binary_file": 1}


def test_truncated_gzip_keeps_records_before_the_break(tmp_path, capsys):
    lines = "".join(json.dumps({"text": f"record number {i} " * 20}) + "\n" for i in range(2000))
    payload = gzip.compress(lines.encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(payload[: len(payload) // 2])
    docs, report = read_all(path)
    assert 0 < len(docs) < 2000
    assert [d.text for d in docs] == [f"record number {i} " * 20 for i in range(len(docs))]
    # the complete records were kept: the lost tail is a bad record, not a skipped file (issue 9)
    assert report.skipped_files == {} and report.bad_records == {"truncated_or_corrupt_tail": 1}
    assert f"kept the {len(docs)} complete records" in capsys.readouterr().err


def test_missing_and_unsupported_paths(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list_input_files([tmp_path / "nope"])
    (tmp_path / "x.docx").write_text("x")
    with pytest.raises(InputError, match="unsupported file type"):
        list_input_files([tmp_path / "x.docx"])


def test_doc_split_modes_of_text_files(tmp_path):
    from lmforge.data.readers import ReadOptions, read_file

    path = tmp_path / "poems.txt"
    path.write_text("Roses are red,\nviolets are blue.\n\n\nThe sea is wide.\n\nLast one\nends here.\n")

    def docs(mode):
        return [d.text for d in read_file(path, ReadOptions(doc_split=mode))]

    assert docs("blank-line") == ["Roses are red,\nviolets are blue.\n", "The sea is wide.\n", "Last one\nends here.\n"]
    assert docs("line") == ["Roses are red,\n", "violets are blue.\n", "The sea is wide.\n", "Last one\n",
                            "ends here.\n"]
    assert docs("file") == [path.read_text()]
    # blocks of at least 20 characters, cut only at a blank line, the text kept whole
    assert docs("chars:20") == ["Roses are red,\nviolets are blue.\n\n", "\nThe sea is wide.\n\nLast one\nends here.\n"]
    assert docs("auto") == docs("blank-line")
