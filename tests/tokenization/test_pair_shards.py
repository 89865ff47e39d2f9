"""Pair shards: every pair's source and target ids read back exactly, one tokenizer per side or one for both,
made once and reused, and refused for a folder of other tokenizers."""

from __future__ import annotations

import json

import pytest

from lmforge.data.pairs import PairsConfig, prepare_pairs
from lmforge.errors import InputError
from lmforge.tokenization.corpus import train_pair_tokenizer
from lmforge.tokenization.pairs import read_pair_shards, tokenize_pairs
from lmforge.tokenization.tokenizer import Tokenizer


def test_pair_shards_round_trip_with_a_tokenizer_per_side(tmp_path):
    records = [{"src": f"open file number {i}", "tgt": f"Datei Nummer {i} öffnen"} for i in range(60)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                      encoding="utf-8")
    prepare_pairs([tmp_path / "p.jsonl"], tmp_path / "data", PairsConfig(val_fraction=0.1, test_fraction=0.1))
    train_pair_tokenizer(tmp_path / "data", "src", "bpe", 300, tmp_path / "en")
    train_pair_tokenizer(tmp_path / "data", "tgt", "unigram", 32, tmp_path / "de")
    en, de = Tokenizer(tmp_path / "en"), Tokenizer(tmp_path / "de")
    out = tokenize_pairs(tmp_path / "data", en, de)
    shards = read_pair_shards(out)
    assert not shards.joint and shards.meta["src_vocab_size"] == 300
    assert [t.sha256 for t in shards.tokenizers()] == [en.sha256, de.sha256]
    from lmforge.data.pairs import read_pairs

    for split in ("train", "valid", "test"):
        texts = list(read_pairs(tmp_path / "data", split))
        pairs = shards.split(split)
        assert len(pairs) == len(texts) == shards.meta["splits"][split]["pairs"]
        for i, (src, tgt) in enumerate(texts):
            ids_src, ids_tgt = pairs.pair(i)
            assert en.decode(ids_src.tolist()) == src and ids_tgt.tolist() == de.encode(tgt)
    assert tokenize_pairs(tmp_path / "data", en, de) == out          # made once, then reused
    with pytest.raises(InputError, match="other tokenizers"):
        tokenize_pairs(tmp_path / "data", de, en, out=out)


def test_training_finds_the_pair_shards_that_tokenize_wrote_into_the_dataset(tmp_path):
    from lmforge.training.seq2seq_runs import pair_shards_for

    records = [{"src": f"open file {i}", "tgt": f"Datei {i} öffnen"} for i in range(40)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                      encoding="utf-8")
    prepare_pairs([tmp_path / "p.jsonl"], tmp_path / "data", PairsConfig(val_fraction=0.1, test_fraction=0.1))
    with pytest.raises(InputError, match="pass --tokenizer"):
        pair_shards_for(tmp_path / "data", None, None)
    train_pair_tokenizer(tmp_path / "data", "joint", "word", 64, tmp_path / "joint")
    out = tokenize_pairs(tmp_path / "data", Tokenizer(tmp_path / "joint"))
    assert pair_shards_for(tmp_path / "data", None, None).directory == out
    train_pair_tokenizer(tmp_path / "data", "joint", "bpe", 300, tmp_path / "other")
    tokenize_pairs(tmp_path / "data", Tokenizer(tmp_path / "other"))
    with pytest.raises(InputError, match="2 tokenizers"):
        pair_shards_for(tmp_path / "data", None, None)
