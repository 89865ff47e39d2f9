"""WARC/WET reader on a small WARC the test writes with warcio: good pages and every kind of bad one."""

import io

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from conftest import assert_input_error
from lmforge.data.readers import ReadOptions, read_file
from lmforge.data.web import decode_html

PAGE = """<html><head><title>T</title></head><body>
<nav><a href="/">Home</a> | <a href="/a">About</a> | <a href="/b">Blog</a></nav>
<article><h1>Rivers of the north</h1>
<p>The northern rivers run cold and clear through the old forests of the valley.</p>
<p>Every spring the snow melts and the water rises over the stones near the village.</p>
</article><footer>Copyright 2024. All rights reserved.</footer></body></html>"""


def response(writer, url, body: bytes, status="200 OK", content_type="text/html; charset=utf-8", truncated=False):
    http = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
    headers = {"WARC-Truncated": "length"} if truncated else None
    record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                       warc_headers_dict=headers)
    writer.write_record(record)


def write_warc(path, extra=None):
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        writer.write_record(writer.create_warcinfo_record("x.warc.gz", {"software": "test"}))
        response(writer, "http://a.example/good", PAGE.encode())
        response(writer, "http://a.example/missing", b"<html>gone</html>", status="404 Not Found")
        response(writer, "http://a.example/img", b"\x89PNG....", content_type="image/png")
        response(writer, "http://a.example/cut", PAGE.encode(), truncated=True)
        response(writer, "http://a.example/empty", b"<html><body><script>x()</script></body></html>")
        latin = PAGE.replace("northern", "nördliche").encode("latin-1")
        response(writer, "http://a.example/latin", latin, content_type="text/html; charset=utf-8")  # wrong header
        if extra:
            extra(writer)


def test_warc_reader_extracts_main_text_and_counts_skips(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path)
    options = ReadOptions()
    docs = list(read_file(path, options))
    assert [d.meta["url"] for d in docs] == ["http://a.example/good", "http://a.example/latin"]
    good, latin = docs
    assert "northern rivers run cold" in good.text and "Rivers of the north" in good.text
    assert "nördliche rivers" in latin.text  # the wrong header charset was not trusted
    assert options.report.bad_records == {"warc_not_200": 1, "warc_not_html": 1, "warc_truncated_record": 1,
                                          "warc_no_text": 1}
    assert good.meta["offset"] > 0


def test_wet_conversion_records(tmp_path):
    path = tmp_path / "crawl.warc.wet.gz"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        record = writer.create_warc_record("http://b.example/", "conversion",
                                           payload=io.BytesIO("Plain extracted text. Ünïcode.".encode()),
                                           warc_content_type="text/plain")
        writer.write_record(record)
    docs = list(read_file(path, ReadOptions()))
    assert [d.text for d in docs] == ["Plain extracted text. Ünïcode."]


def test_bad_record_in_the_middle_costs_only_itself(tmp_path, capsys):
    import gzip

    path = tmp_path / "middle.warc.gz"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        response(writer, "http://a.example/first", PAGE.encode())
    bad_offset = path.stat().st_size
    with open(path, "ab") as handle:  # one corrupt gzip member, as in a damaged crawl file
        handle.write(gzip.compress(b"GARBAGE/9.9 not a WARC header\r\n\r\n" + b"x" * 50))
    with open(path, "ab") as handle:
        writer = WARCWriter(handle, gzip=True)
        response(writer, "http://a.example/third", PAGE.replace("northern", "eastern").encode())
    options = ReadOptions()
    docs = list(read_file(path, options))
    assert [d.meta["url"] for d in docs] == ["http://a.example/first", "http://a.example/third"]
    assert options.report.bad_records.get("warc_bad_record") == 1  # (warcio may also see a non-200 in it)
    assert f"unreadable WARC record at byte {bad_offset}" in capsys.readouterr().err
    assert docs[1].meta["offset"] > docs[0].meta["offset"]


def test_bad_record_header_keeps_earlier_records(tmp_path, capsys):
    path = tmp_path / "bad.warc"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        response(writer, "http://a.example/good", PAGE.encode())
    with open(path, "ab") as handle:
        handle.write(b"GARBAGE/9.9 this is no WARC header\r\n\r\n" + b"x" * 100)
    options = ReadOptions()
    docs = list(read_file(path, options))
    assert len(docs) == 1
    assert options.report.bad_records.get("warc_bad_record") == 1
    assert "resynchronising on the next record" in capsys.readouterr().err
    assert options.report.bad_records["warc_skipped_bytes"] == 38 + 100   # the garbage, to the end of the file


def test_a_plain_warc_resynchronises_after_a_corrupt_middle_record(tmp_path, capsys):
    path = tmp_path / "middle.warc"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        response(writer, "http://a.example/good", PAGE.encode())
        middle = handle.tell()
        response(writer, "http://a.example/broken", PAGE.encode())
        end_of_middle = handle.tell()
        response(writer, "http://a.example/after", PAGE.replace("northern", "southern").encode())
    payload = bytearray(path.read_bytes())
    payload[middle:middle + 8] = b"GARBAGE!"         # the middle record's "WARC/1.x" line is destroyed
    path.write_bytes(bytes(payload))
    options = ReadOptions()
    docs = list(read_file(path, options))
    assert [d.meta["url"] for d in docs] == ["http://a.example/good", "http://a.example/after"]
    assert docs[1].meta["offset"] == end_of_middle
    assert options.report.bad_records["warc_bad_record"] == 1
    assert options.report.bad_records["warc_skipped_bytes"] == end_of_middle - middle


def test_charset_detection_without_a_header():
    assert decode_html("Grüße aus Köln".encode("cp1252"), "text/html") == "Grüße aus Köln"
    assert decode_html(b"ok", "text/html; charset=no-such-charset") == "ok"


def test_wrong_content_length_does_not_crash(tmp_path, cli):
    path = tmp_path / "lying.warc"
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=False)
        response(writer, "http://a.example/good", PAGE.encode())
        response(writer, "http://a.example/second", PAGE.replace("northern", "southern").encode())
    raw = path.read_bytes()
    second = raw.rfind(b"Content-Length: ")
    end = raw.index(b"\r\n", second)
    path.write_bytes(raw[:second] + b"Content-Length: 999999" + raw[end:])  # longer than the file
    result = cli("prepare", path, "--out", tmp_path / "out", "--quality-filters", "off", "--min-chars", "10",
                 "--json")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert sum(result.json()["docs_out"].values()) >= 1


def test_quality_thresholds_are_options(tmp_path, cli):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path)
    strict = cli("prepare", path, "--out", tmp_path / "strict", "--min-chars", "10")
    # the pages have fewer than Gopher's 50 words: nothing is left, and the error says why
    assert_input_error(strict, "empty corpus", "'gopher_short_document': 2")
    relaxed = cli("prepare", path, "--out", tmp_path / "relaxed", "--min-chars", "10", "--quality.min-words", "5",
                  "--quality.c4-min-sentences", "1", "--json")
    assert relaxed.code == 0 and "gopher_short_document" not in relaxed.json()["rejected_docs"]


def test_truncated_warc_keeps_the_complete_records(tmp_path, capsys):
    path = tmp_path / "cut.warc.gz"
    write_warc(path)
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) - 40])  # the last record's gzip member is cut
    options = ReadOptions()
    docs = list(read_file(path, options))
    assert [d.meta["url"] for d in docs] == ["http://a.example/good"]  # the cut one was the last
    # the complete records were kept: the lost tail is a bad record, not a skipped file (issue 9)
    assert options.report.skipped_files == {} and options.report.bad_records["truncated_or_corrupt_tail"] == 1
    assert "kept the 1 complete records" in capsys.readouterr().err


def test_missing_data_extra_is_a_one_line_error(tmp_path, cli, monkeypatch):
    import sys

    path = tmp_path / "crawl.warc.gz"
    write_warc(path)
    monkeypatch.setitem(sys.modules, "warcio", None)  # as if `lmforge[data]` were not installed
    assert_input_error(cli("prepare", path, "--out", tmp_path / "out"), "warcio", "pip install 'lmforge[data]'")
