"""Token shards: dtype by vocabulary size, writer round trip, metadata checks."""

import numpy as np
import pytest

from lmforge.data.shards import ShardWriter, check_shards_match, dtype_for_vocab, read_meta, write_meta
from lmforge.errors import InputError


def test_dtype_follows_vocabulary_size():
    assert dtype_for_vocab(65_535) == np.uint16
    assert dtype_for_vocab(65_536) == np.uint32
    assert dtype_for_vocab(128_256) == np.uint32


def test_uint32_round_trip_and_meta(tmp_path):
    writer = ShardWriter(tmp_path, "train", dtype_for_vocab(100_000))
    writer.write([[1, 99_999, 70_000], [5]], text_bytes=12)
    writer.close()
    write_meta(tmp_path, vocab_size=100_000, tokenizer_sha256="ab" * 32, tokenizer_name="big",
               splits={"train": {"tokens": writer.tokens, "bytes": writer.bytes, "documents": writer.docs}},
               source="x")
    meta = read_meta(tmp_path)
    assert meta.dtype == np.uint32 and meta.tokens("train").tolist() == [1, 99_999, 70_000, 5]
    assert meta.bytes_per_token("train") == 3.0
    with pytest.raises(InputError, match="no 'val' split"):
        meta.tokens("val")
    with pytest.raises(InputError, match="does not fit the model's vocab_size 50000"):
        check_shards_match(meta, vocab_size=50_000, tokenizer_sha256=None, owner="test")
    with pytest.raises(InputError, match="shards were made with tokenizer 'big'"):
        check_shards_match(meta, vocab_size=100_000, tokenizer_sha256="cd" * 32, owner="test")


def test_malformed_meta_is_an_input_error(tmp_path):
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(InputError, match="malformed JSON"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text('{"format": "something.else"}')
    with pytest.raises(InputError, match="not an lmforge shards file"):
        read_meta(tmp_path)
