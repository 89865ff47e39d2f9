"""The prepare stage: raw files -> cleaned, filtered, deduplicated train/val documents + stats.json."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from lmforge.data.cleaning import clean_whitespace, min_chars, normalize_unicode
from lmforge.data.pipeline import PipelineStats, dedup_exact, hash_fraction, keep_if, map_step, run_pipeline
from lmforge.data.readers import ReadOptions, list_input_files, read_documents
from lmforge.data.writers import DocumentWriter
from lmforge.errors import InputError
from lmforge.runs import write_json

PREPARE_FORMAT_VERSION = 1


@dataclass
class PrepareConfig:
    text_field: str = "text"
    """Field (JSONL) or column (Parquet) that holds the text."""
    val_fraction: float = 0.01
    """Fraction of documents, chosen by a hash of their text, that go to the validation split."""
    min_chars: int = 32
    """Drop documents shorter than this (characters, after cleaning)."""
    dedup: bool = True
    """Drop exact duplicates (case- and whitespace-insensitive)."""
    keep_rejected: bool = True
    """Write what each filter removed under rejected/<reason>/ for audit."""
    skip_bad_records: bool = False
    """Skip (and count) malformed records and unreadable files instead of stopping."""
    rank: int = 0
    """This process's shard of the input files (files[rank::world_size])."""
    world_size: int = 1
    """Number of shards the input files are split into."""

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.min_chars < 0:
            raise ValueError(f"--min-chars must be >= 0, got {self.min_chars}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"--rank must be in [0, --world-size), got {self.rank} of {self.world_size}")


def default_steps(config: PrepareConfig) -> list:
    steps = [map_step(normalize_unicode), map_step(clean_whitespace),
             keep_if(min_chars(max(config.min_chars, 1)), reason="too_short")]
    if config.dedup:
        steps.append(dedup_exact())
    return steps


def prepare_corpus(sources: list[Path], out: Path, config: PrepareConfig, val_sources: list[Path] = (),
                   overwrite: bool = False) -> dict:
    """Run the pipeline; the result appears in `out` only when complete (built in a temp folder)."""
    out = Path(out)
    if (out / "clean").exists() and not overwrite:
        raise InputError(f"{out}/clean: already prepared; pass --overwrite to replace it or choose another --out.")
    files = list_input_files(list(sources))[config.rank::config.world_size]
    val_files = list_input_files(list(val_sources))[config.rank::config.world_size] if val_sources else []
    if not files:
        raise InputError(f"{', '.join(map(str, sources))}: no readable text files (.txt .md .jsonl[.gz] .parquet).")
    options = ReadOptions(text_field=config.text_field, skip_bad_records=config.skip_bad_records)
    tmp = out / ".prepare.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    steps, stats, started = default_steps(config), PipelineStats(), time.perf_counter()
    rejects = DocumentWriter(tmp / "rejected", subdirs=True) if config.keep_rejected else None
    with DocumentWriter(tmp / "clean") as writer:
        bar = tqdm(desc="prepare", unit=" docs", file=sys.stderr, dynamic_ncols=True)
        # an explicit validation source goes first, so train copies of val documents are the duplicates
        for group, split in ((val_files, lambda doc: "val"), (files, _hash_split(config, bool(val_files)))):
            run_pipeline(_counted(read_documents(group, options), bar), steps, writer, split, stats, rejects)
        bar.close()
    if rejects:
        rejects.close()
    if not sum(stats.docs_out.values()):
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"{', '.join(map(str, sources))}: empty corpus after cleaning ({stats.docs_in} documents "
                         f"read, rejected: {stats.rejected_docs}); add text or lower --min-chars.")
    report = {"format": "lmforge.prepared", "version": PREPARE_FORMAT_VERSION, "config": asdict(config),
              "sources": [str(s) for s in sources], "val_sources": [str(s) for s in val_sources],
              "files": options.report.files, "skipped_files": options.report.skipped_files,
              "bad_records": options.report.bad_records,
              "docs_with_invalid_utf8": options.report.docs_with_invalid_utf8,
              **stats.as_dict(), "seconds": round(time.perf_counter() - started, 3)}
    write_json(tmp / "stats.json", report)
    _swap_into_place(tmp, out)
    return report


def _hash_split(config: PrepareConfig, explicit_val: bool):
    if explicit_val:
        return lambda doc: "train"
    return lambda doc: "val" if hash_fraction(doc.text) < config.val_fraction else "train"


def _counted(docs, bar):
    for doc in docs:
        bar.update(1)
        yield doc


def _swap_into_place(tmp: Path, out: Path) -> None:
    for name in ("clean", "rejected", "stats.json"):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (tmp / name).exists():
            (tmp / name).rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
