"""Parallel data: records and aligned files read, both sides cleaned, bad pairs counted and kept under
rejected/, duplicates dropped, and splits that never share a source sentence."""

from __future__ import annotations

import gzip
import json

import pytest

from lmforge.data.pairs import PairsConfig, prepare_pairs, read_pairs, source_key
from lmforge.errors import InputError


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def rejected(out, reason):
    with gzip.open(out / "rejected" / f"{reason}.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_records_are_cleaned_filtered_and_every_dropped_pair_is_counted(tmp_path):
    records = [{"src": f"Open file {i}", "tgt": f"Datei {i} öffnen", "lang": "de"} for i in range(40)]
    records += [
        {"src": "Quit\n  now", "tgt": "Jetzt\tbeenden", "lang": "de"},      # whitespace inside a message
        {"src": "Open file 1", "tgt": "Datei 1 öffnen", "lang": "de"},      # a duplicate pair
        {"src": "only a source", "lang": "de"},                             # a missing side
        {"src": "   ", "tgt": "leer", "lang": "de"},                        # empty after cleaning
        {"src": "short", "tgt": "x" * 90, "lang": "de"},                    # length ratio
        {"src": "z" * 101, "tgt": "z" * 101, "lang": "de"},                 # too long
        {"src": "y" * 50, "tgt": "y" * 60, "lang": "de"},                   # fine ratio
        {"src": "Hello", "tgt": "Bonjour", "lang": "fr"},                   # filtered out
    ]
    stats = prepare_pairs([write_jsonl(tmp_path / "pairs.jsonl", records)], tmp_path / "out",
                          PairsConfig(filter=["lang=de"], max_chars=100, val_fraction=0.2, test_fraction=0.2))
    assert stats["skipped"] == {"filtered_out": 1, "missing_side": 1}
    assert stats["rejected"] == {"duplicate": 1, "empty": 1, "length_ratio": 1, "too_long": 1}
    assert sum(stats["pairs_out"].values()) == 42
    assert rejected(tmp_path / "out", "length_ratio")[0]["src"] == "short"
    everything = [p for split in ("train", "valid", "test") for p in read_pairs(tmp_path / "out", split)]
    assert ("Quit now", "Jetzt beenden") in everything
    assert all(stats["pairs_out"][split] > 0 for split in ("train", "valid", "test"))


def test_a_source_sentence_never_lands_in_two_splits(tmp_path):
    # many translations of few sources, with case and spacing variants of the same source
    records = [{"src": f"{'  ' if k % 2 else ''}Message {i % 30}".upper() if k % 3 == 0 else f"message {i % 30}",
                "tgt": f"Meldung {i} v{k}"} for i in range(300) for k in range(2)]
    prepare_pairs([write_jsonl(tmp_path / "p.jsonl", records)], tmp_path / "out", PairsConfig())
    seen = {}
    for split in ("train", "valid", "test"):
        for src, _ in read_pairs(tmp_path / "out", split):
            seen.setdefault(source_key(src), set()).add(split)
    assert len(seen) == 30 and all(len(splits) == 1 for splits in seen.values())


def test_named_split_files_are_kept_and_train_gives_up_sources_of_the_evaluation_splits(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"src": "Save", "tgt": "Speichern"}, {"src": "Open", "tgt": "Öffnen"}])
    write_jsonl(folder / "valid.jsonl", [{"src": "Close", "tgt": "Schließen"}])
    write_jsonl(folder / "test.jsonl", [{"src": "open", "tgt": "Aufmachen"}])
    stats = prepare_pairs([folder], tmp_path / "out", PairsConfig())
    assert list(read_pairs(tmp_path / "out", "train")) == [("Save", "Speichern")]
    assert stats["rejected"] == {"source_in_eval_split": 1}
    assert list(read_pairs(tmp_path / "out", "test")) == [("open", "Aufmachen")]


def test_two_aligned_text_files_and_tsv_records(tmp_path):
    (tmp_path / "en.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "de.txt").write_text("eins\nzwei\ndrei\n", encoding="utf-8")
    stats = prepare_pairs([tmp_path / "en.txt", tmp_path / "de.txt"], tmp_path / "a",
                          PairsConfig(val_fraction=0, test_fraction=0))
    assert list(read_pairs(tmp_path / "a", "train")) == [("one", "eins"), ("two", "zwei"), ("three", "drei")]
    assert stats["pairs_out"] == {"train": 3, "valid": 0, "test": 0}
    (tmp_path / "p.tsv").write_text("en\tde\tnote\nyes\tja\tx\nno\tnein\ty\n", encoding="utf-8")
    prepare_pairs([tmp_path / "p.tsv"], tmp_path / "b", PairsConfig(src_field="en", tgt_field="de", val_fraction=0,
                                                                   test_fraction=0))
    assert list(read_pairs(tmp_path / "b", "train")) == [("yes", "ja"), ("no", "nein")]


def test_aligned_files_of_different_lengths_are_refused_before_anything_is_written(tmp_path):
    (tmp_path / "en.txt").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "de.txt").write_text("eins\n", encoding="utf-8")
    with pytest.raises(InputError, match="2 lines and .* 1"):
        prepare_pairs([tmp_path / "en.txt", tmp_path / "de.txt"], tmp_path / "out", PairsConfig())
    assert not (tmp_path / "out" / "stats.json").exists()
