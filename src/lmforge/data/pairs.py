"""Parallel data (`prepare --pairs`): sentence pairs from records (JSONL, TSV, Parquet) or two aligned text
files, cleaned on both sides, filtered (empty, over-long, length-ratio outliers), deduplicated on the pair,
and split so that one source sentence never lands in two splits; every dropped pair is counted by reason
and kept under rejected/<reason>.jsonl.gz.

Output: `pairs/{train,valid,test}.jsonl.gz` ({"src", "tgt", "where"} per line) and `stats.json`
({"format": "lmforge.pairs", ...}), the input of the pair tokenizer (tokenization/pairs.py)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lmforge.artifacts import atomic_write_bytes, read_json, write_json
from lmforge.data.cleaning import dedup_key
from lmforge.data.pipeline import hash_fraction
from lmforge.data.readers import open_text
from lmforge.errors import InputError

PAIRS_FORMAT, PAIRS_VERSION = "lmforge.pairs", 1
SPLITS = ("train", "valid", "test")
SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "dev": "valid", "val": "valid",
               "test": "test"}
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".tsv", ".tsv.gz", ".parquet")
REASONS = ("missing_side", "filtered_out", "empty", "too_long", "length_ratio", "duplicate", "source_in_eval_split")


@dataclass
class PairsConfig:
    src_field: str = "src"
    """Field (JSONL, Parquet, a TSV header) of the source sentence."""
    tgt_field: str = "tgt"
    """Field of the target sentence."""
    filter: list[str] = field(default_factory=list, metadata={"append": True, "metavar": "FIELD=VALUE"})
    """Keep only records whose FIELD equals VALUE (repeatable; e.g. tgt_lang=de)."""
    max_chars: int = 1000
    """Drop a pair whose source or target is longer than this (characters, after cleaning)."""
    max_ratio: float = 3.0
    """Drop a pair whose longer side has more than this many times the characters of the shorter."""
    ratio_min_chars: int = 20
    """Apply --max-ratio only when the longer side has at least this many characters (short messages
    such as `OK` / `Aceptar` differ in length naturally)."""
    val_fraction: float = 0.05
    """Without named files: the share of source sentences, chosen by a hash, whose pairs go to valid."""
    test_fraction: float = 0.05
    """Without named files: the share of source sentences whose pairs go to test."""
    dedup: bool = True
    """Drop repeated (source, target) pairs."""

    def __post_init__(self) -> None:
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1):
            raise ValueError("--val-fraction and --test-fraction must be in [0, 1) and add up to less than 1")
        if self.max_chars < 1 or self.max_ratio < 1:
            raise ValueError("--max-chars must be positive and --max-ratio at least 1")
        for rule in self.filter:
            if "=" not in rule:
                raise ValueError(f"--filter {rule!r}: write FIELD=VALUE (e.g. tgt_lang=de)")

    @property
    def filters(self) -> dict[str, str]:
        return dict(rule.split("=", 1) for rule in self.filter)


@dataclass
class Pair:
    src: str
    tgt: str
    where: str
    record: dict = field(default_factory=dict)


def clean_side(text: str) -> str:
    """NFC, every run of whitespace (newlines of a message too) one space, no edges."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in (*RECORD_SUFFIXES, ".txt", ".txt.gz") if name.endswith(s)), "")


def _records(path: Path, names: tuple[str, str]) -> Iterator[tuple[dict, str]]:
    suffix = _suffix(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for row, record in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield record, f"{path}:row {row}"
        return
    with open_text(path) as handle:
        if suffix.startswith(".tsv"):
            yield from _tsv_records(handle, path, names)
            return
        for line, text in enumerate(handle, start=1):
            if text.strip():
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as error:
                    raise InputError(f"{path}:{line}: not a JSON object ({error.msg}); fix or remove the "
                                     "line.") from None
                yield record, f"{path}:{line}"


def _tsv_records(handle, path: Path, names: tuple[str, str]) -> Iterator[tuple[dict, str]]:
    """`source<TAB>target` lines; a first line holding both field names is a header (more columns allowed)."""
    rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = None
    for line, row in enumerate(rows, start=1):
        if line == 1 and set(names) <= set(row):
            header = row
            continue
        yield dict(zip(header or names, row)), f"{path}:{line}"


def read_pair_records(path: Path, config: PairsConfig, counts: dict[str, int]) -> Iterator[Pair]:
    """Pairs of a records file; a record without one of the two fields is counted and skipped."""
    filters, names = config.filters, (config.src_field, config.tgt_field)
    for record, where in _records(path, names):
        if any(str(record.get(k)) != v for k, v in filters.items()):
            counts["filtered_out"] = counts.get("filtered_out", 0) + 1
            continue
        src, tgt = record.get(names[0]), record.get(names[1])
        if not isinstance(src, str) or not isinstance(tgt, str):
            counts["missing_side"] = counts.get("missing_side", 0) + 1
            continue
        yield Pair(src, tgt, where, record)


def read_aligned_texts(src_path: Path, tgt_path: Path) -> list[Pair]:
    """Line i of one file and line i of the other; files of different line counts are refused."""
    with open_text(src_path) as a, open_text(tgt_path) as b:
        src, tgt = a.read().splitlines(), b.read().splitlines()
    if len(src) != len(tgt):
        raise InputError(f"{src_path} has {len(src):,} lines and {tgt_path} {len(tgt):,}: aligned halves of a parallel "
                         "corpus must have one line per sentence each; fix the files.")
    return [Pair(s, t, f"{src_path}:{i}") for i, (s, t) in enumerate(zip(src, tgt), start=1)]


def _split_of(path: Path) -> str | None:
    return SPLIT_NAMES.get(path.name.lower().split(".")[0])


def input_splits(sources: list[Path]) -> dict[str, list[Path]] | None:
    """A folder (or files) named train/valid/test keeps those splits; else None (split by hash)."""
    files = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.is_file() and _suffix(p) in RECORD_SUFFIXES)
        elif source.is_file():
            files.append(source)
        else:
            raise InputError(f"{source}: no such file or folder of sentence pairs.")
    if not files:
        raise InputError(f"{', '.join(map(str, sources))}: no pair files ({', '.join(RECORD_SUFFIXES)}, or two .txt).")
    named = {p: _split_of(p) for p in files}
    if all(named.values()):
        return {split: [p for p, s in named.items() if s == split] for split in SPLITS}
    return {"": files}


def checked(pair: Pair, config: PairsConfig) -> tuple[Pair, str | None]:
    """The pair with both sides cleaned, and why it is dropped (None: kept)."""
    src, tgt = clean_side(pair.src), clean_side(pair.tgt)
    cleaned = Pair(src, tgt, pair.where, pair.record)
    if not src or not tgt:
        return cleaned, "empty"
    longer, shorter = max(len(src), len(tgt)), min(len(src), len(tgt))
    if longer > config.max_chars:
        return cleaned, "too_long"
    if longer >= config.ratio_min_chars and longer > config.max_ratio * shorter:
        return cleaned, "length_ratio"
    return cleaned, None


def pair_key(pair: Pair) -> bytes:
    return hashlib.blake2b(f"{pair.src}\t{pair.tgt}".encode(), digest_size=8).digest()


def source_key(text: str) -> bytes:
    """Sources equal up to case and whitespace are one sentence (as the hash split sees them)."""
    return hashlib.blake2b(dedup_key(text).encode(), digest_size=8).digest()


class PairSink:
    """The output folder: pairs/<split>.jsonl.gz, rejected/<reason>.jsonl.gz, each written to a temporary
    name and renamed into place when complete; counts per split and reason."""

    def __init__(self, out: Path):
        self.out = out
        self.handles: dict[Path, gzip.GzipFile] = {}
        self.kept = {split: 0 for split in SPLITS}
        self.chars = {split: [0, 0] for split in SPLITS}
        self.rejected: dict[str, int] = {}

    def _write(self, path: Path, record: dict) -> None:
        if path not in self.handles:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handles[path] = gzip.open(path.with_name(f".{path.name}.tmp"), "wt", encoding="utf-8")
        self.handles[path].write(json.dumps(record, ensure_ascii=False) + "\n")

    def keep(self, pair: Pair, split: str) -> None:
        self.kept[split] += 1
        self.chars[split][0] += len(pair.src)
        self.chars[split][1] += len(pair.tgt)
        self._write(self.out / "pairs" / f"{split}.jsonl.gz", {"src": pair.src, "tgt": pair.tgt, "where": pair.where})

    def reject(self, pair: Pair, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self._write(self.out / "rejected" / f"{reason}.jsonl.gz", {"src": pair.src, "tgt": pair.tgt,
                                                                   "where": pair.where})

    def close(self) -> None:
        for path, handle in self.handles.items():
            handle.close()
            path.with_name(f".{path.name}.tmp").replace(path)
        for split in SPLITS:   # every split exists, empty or not, so readers need no special case
            path = self.out / "pairs" / f"{split}.jsonl.gz"
            if not path.exists():
                atomic_write_bytes(path, gzip.compress(b"", mtime=0))


def _hash_split(src: str, config: PairsConfig) -> str:
    fraction = hash_fraction(src)
    if fraction < config.test_fraction:
        return "test"
    return "valid" if fraction < config.test_fraction + config.val_fraction else "train"


def _route(pairs, sink: PairSink, config: PairsConfig, split: str | None, seen: set, eval_sources: set,
           counts: dict) -> None:
    """Clean, filter, dedup and split one stream of pairs into the sink."""
    for raw in pairs:
        counts["pairs_in"] += 1
        pair, reason = checked(raw, config)
        if reason is None and config.dedup:
            key = pair_key(pair)
            reason = "duplicate" if key in seen else None
            seen.add(key)
        target = split or _hash_split(pair.src, config)
        if reason is None and target == "train" and split and source_key(pair.src) in eval_sources:
            reason = "source_in_eval_split"
        if reason is not None:
            sink.reject(pair, reason)
            continue
        if split in ("valid", "test"):
            eval_sources.add(source_key(pair.src))
        sink.keep(pair, target)


def prepare_pairs(sources: list[Path], out: Path, config: PairsConfig, overwrite: bool = False) -> dict:
    """The parallel corpus of `sources` into `out` (pairs/, rejected/, stats.json); its statistics."""
    out, sources = Path(out), [Path(s) for s in sources]
    if (out / "stats.json").exists() and not overwrite:
        raise InputError(f"{out}: already holds a prepared dataset; choose another --out, or pass --overwrite.")
    for name in ("pairs", "rejected"):
        for old in (out / name).glob("*.jsonl.gz") if (out / name).is_dir() else []:
            old.unlink()
    start, counts, seen, eval_sources = time.perf_counter(), {"pairs_in": 0}, set(), set()
    sink = PairSink(out)
    try:
        if len(sources) == 2 and all(_suffix(s) in (".txt", ".txt.gz") for s in sources):
            _route(read_aligned_texts(*sources), sink, config, None, seen, eval_sources, counts)
        else:
            splits = input_splits(sources)
            for split in ("valid", "test", "train", ""):   # evaluation splits first: train gives up their sources
                for path in splits.get(split, []):
                    _route(read_pair_records(path, config, counts), sink, config, split or None, seen, eval_sources,
                           counts)
    finally:
        sink.close()
    if sink.kept["train"] == 0:
        raise InputError(f"{', '.join(map(str, sources))}: no training pairs left ({counts['pairs_in']:,} read, "
                         f"{sum(sink.rejected.values()):,} dropped); check --src-field/--tgt-field and --filter.")
    stats = {"format": PAIRS_FORMAT, "version": PAIRS_VERSION, "sources": [str(s.resolve()) for s in sources],
             "config": asdict(config), "pairs_in": counts["pairs_in"],
             "skipped": {k: v for k, v in counts.items() if k != "pairs_in"}, "pairs_out": sink.kept,
             "chars": {split: {"src": c[0], "tgt": c[1]} for split, c in sink.chars.items()},
             "rejected": sink.rejected, "seconds": time.perf_counter() - start}
    write_json(out / "stats.json", stats)
    return stats


def is_pairs_dataset(directory: Path) -> bool:
    path = Path(directory) / "stats.json"
    return path.exists() and read_json(path).get("format") == PAIRS_FORMAT


def read_pairs(directory: Path, split: str) -> Iterator[tuple[str, str]]:
    """(source, target) of a prepared split, in order."""
    path = Path(directory) / "pairs" / f"{split}.jsonl.gz"
    if not path.exists():
        raise InputError(f"{path}: missing; prepare the dataset with `lmforge prepare SOURCES --pairs --out DIR`.")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            yield record["src"], record["tgt"]
