"""Reading labelled examples.

- Records (JSONL, JSONL.gz, CSV, Parquet, or `hf:NAME[:CONFIG]`): `--text-field`, optional
  `--text2-field` (sentence pairs) and `--label-field`; a list label makes the task multi-label.
- CoNLL files: `token<TAB>tag` lines, `#` comments, a blank line between sentences (CoNLL-U through the
  `conllu` package: FORM and UPOS).
A folder whose files are named train/valid(ation)/dev/test is split by name; anything else is split
by a hash of each example's text (the rule `prepare` uses), so the split never depends on file order.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.data.pipeline import hash_fraction
from lmforge.data.readers import open_text
from lmforge.errors import InputError

SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "dev": "valid", "val": "valid",
               "test": "test"}
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
CONLL_SUFFIXES = (".conll", ".conll.gz", ".conllu", ".conllu.gz", ".tsv", ".txt", ".txt.gz")


@dataclass
class Example:
    text: str
    label: str | list[str] | None = None
    text2: str | None = None
    fields: dict = field(default_factory=dict)   # every field of the record (slices, ids)
    source: str = ""                             # file:line, for error messages


@dataclass
class Sentence:
    words: list[str]
    tags: list[str]
    source: str = ""


@dataclass
class Splits:
    train: list
    valid: list
    test: list

    def __iter__(self):
        return iter((("train", self.train), ("valid", self.valid), ("test", self.test)))


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in (*RECORD_SUFFIXES, *CONLL_SUFFIXES) if name.endswith(s)), "")


def _split_of(path: Path) -> str | None:
    stem = path.name.lower().split(".")[0]
    return SPLIT_NAMES.get(stem)


def read_records(path: Path) -> Iterator[tuple[dict, str]]:
    """(record, 'file:line') of a JSONL/CSV/Parquet file."""
    suffix = _suffix(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for row, record in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield record, f"{path}:row {row}"
        return
    try:
        with open_text(path) as handle:
            if suffix == ".csv":
                for line, record in enumerate(csv.DictReader(handle), start=2):
                    yield record, f"{path}:{line}"
                return
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as error:
                    raise InputError(f"{path}:{line}: not a JSON object ({error.msg}); fix or remove the line.") \
                        from None
                if not isinstance(record, dict):
                    raise InputError(f"{path}:{line}: a JSON line must be an object with named fields.")
                yield record, f"{path}:{line}"
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"{path}: unreadable ({error}); expected UTF-8 JSONL/CSV (optionally gzipped).") from None


def to_example(record: dict, where: str, text_field: str, label_field: str | None, text2_field: str | None,
               need_label: bool = True) -> Example:
    def text_of(name: str) -> str:
        if name not in record or record[name] is None:
            raise InputError(f"{where}: no field {name!r} (found {', '.join(sorted(record))}); "
                             f"pass --{'text2' if name == text2_field else 'text'}-field NAME.")
        return str(record[name])

    label = None
    if label_field is not None:
        if record.get(label_field) is None:
            if need_label:
                raise InputError(f"{where}: no label field {label_field!r} (found {', '.join(sorted(record))}); "
                                 "every labelled example needs one: pass --label-field NAME.")
        else:
            value = record[label_field]
            label = [str(v) for v in value] if isinstance(value, list) else str(value)
    return Example(text_of(text_field), label, text_of(text2_field) if text2_field else None, record, where)


def read_conll(path: Path) -> Iterator[Sentence]:
    """token<TAB>tag sentences; CoNLL-U (.conllu) files give FORM and UPOS."""
    if _suffix(path).startswith(".conllu"):
        yield from _read_conllu(path)
        return
    words, tags, start = [], [], 1
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                if words:
                    yield Sentence(words, tags, f"{path}:{start}")
                words, tags, start = [], [], number + 1
                continue
            columns = line.split("\t")
            if len(columns) != 2:
                raise InputError(f"{path}:{number}: {len(columns)} tab-separated columns, expected 2 "
                                 "(token<TAB>tag); fix the line or convert the file.")
            words.append(columns[0])
            tags.append(columns[1])
    if words:
        yield Sentence(words, tags, f"{path}:{start}")


def _read_conllu(path: Path) -> Iterator[Sentence]:
    try:
        import conllu
    except ImportError:
        raise InputError(f"{path}: CoNLL-U files are read with the `conllu` package: pip install conllu.") from None
    with open_text(path) as handle:
        for number, tokens in enumerate(conllu.parse_incr(handle), start=1):
            words = [t["form"] for t in tokens if isinstance(t["id"], int)]
            tags = [t["upos"] for t in tokens if isinstance(t["id"], int)]
            yield Sentence(words, tags, f"{path}:sentence {number}")


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.is_file() and _suffix(p))
    raise InputError(f"{source}: no such file or folder of examples.")


def read_splits(source: str | Path, load, key, valid_fraction: float = 0.1, test_fraction: float = 0.0) -> Splits:
    """Items of every file under `source` (`load(path) -> iterator`), split by file name when the files
    are named train/valid/test, otherwise by `hash_fraction(key(item))`. Named files without a valid one
    (a lone train.jsonl) get their valid split by the hash from train, so training still validates."""
    files = _files(Path(source))
    if not files:
        raise InputError(f"{source}: no example files ({', '.join(RECORD_SUFFIXES + CONLL_SUFFIXES)}).")
    named = {p: _split_of(p) for p in files}
    splits = Splits([], [], [])
    if all(named.values()):
        for path, split in named.items():
            getattr(splits, split).extend(load(path))
        if not splits.train:
            raise InputError(f"{source}: no train file (train.jsonl, train.conll, ...).")
        if not splits.valid:
            train, splits.train = splits.train, []
            for item in train:
                (splits.valid if hash_fraction(key(item)) < valid_fraction else splits.train).append(item)
        return splits
    for path in files:
        for item in load(path):
            fraction = hash_fraction(key(item))
            target = splits.test if fraction < test_fraction else \
                splits.valid if fraction < test_fraction + valid_fraction else splits.train
            target.append(item)
    return splits


def read_hub_splits(source: str, to_item) -> Splits:
    """`hf:NAME[:CONFIG]` through `datasets` (online): its train/validation/test splits."""
    name, _, config = source[3:].partition(":")
    try:
        from datasets import load_dataset
    except ImportError:
        raise InputError(f"{source}: reading the hub needs pip install 'lmforge[data]'.") from None
    out = Splits([], [], [])
    for hub_split, ours in (("train", "train"), ("validation", "valid"), ("test", "test")):
        try:
            rows = load_dataset(name, config or None, split=hub_split)
        except ValueError:   # the dataset has no such split
            continue
        except Exception as error:  # offline, or a wrong name: datasets raises many types
            raise InputError(f"{source}: cannot load from the Hugging Face hub ({type(error).__name__}); offline, "
                             "download it elsewhere and pass the folder of its files.") from None
        getattr(out, ours).extend(to_item(record, f"{source}:{hub_split}:{i}") for i, record in enumerate(rows))
    return out
