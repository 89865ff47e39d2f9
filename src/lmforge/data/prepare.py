"""The prepare stage: raw sources -> cleaned, filtered, deduplicated train/val documents + stats.json.

Phase 1 (per input, in parallel with --workers, or one --rank of --world-size anywhere) writes parts
under work/; phase 2 deduplicates across all parts and writes clean/, rejected/, stats.json and
lengths.png. `merge_prepared` runs phase 2 over the parts of many shard directories."""

from __future__ import annotations

import multiprocessing
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from lmforge.artifacts import read_json, write_json
from lmforge.data.dedup import Part, collect_phase1_rejects, duplicate_decisions, load_facts, write_final
from lmforge.data.minhash import MinHashConfig
from lmforge.data.multistream import part_of, split_into_parts
from lmforge.data.quality import QualityConfig
from lmforge.data.ray_executor import EXECUTORS
from lmforge.data.readers import doc_split_chars, list_input_files
from lmforge.data.report import plot_lengths, summarize
from lmforge.data.work import WORK_FORMAT_VERSION, finished_parts, part_name, process_input
from lmforge.errors import InputError

PREPARE_FORMAT_VERSION = 2
# fork starts workers with the parent's imports and loaded models (py3langid, resiliparse) already
# in memory; prepare runs no torch ops, so no OpenMP pool exists to be broken by forking
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
OUTPUTS = ("clean", "rejected", "stats.json", "lengths.png")


@dataclass
class PrepareConfig:
    text_field: str = "text"
    """Field (JSONL, hub) or column (Parquet, Arrow) that holds the text."""
    hub_split: str = "train"
    """Split to read from hf:DATASET sources."""
    val_fraction: float = 0.01
    """Fraction of documents, chosen by a hash of their text, that go to the validation split."""
    doc_split: str = "auto"
    """What one document of a text file is: blank-line (each block between blank lines), line, file
    (the whole file), chars:N (blocks of about N characters cut at blank lines; for books), or auto
    (blank-line for .txt, file for Markdown/reST pages)."""
    min_chars: int | None = None
    """Drop documents shorter than this (characters, after cleaning; a Chinese, Japanese or Thai
    character counts as 3). None: 32, but a line of a one-sentence-a-line file is kept unless empty."""
    max_chars: int = 2_000_000
    """Drop documents longer than this (characters)."""
    dedup: bool = True
    """Drop exact duplicates (case- and whitespace-insensitive) across the whole corpus."""
    near_dedup: bool = True
    """Drop near duplicates (MinHash over word 5-grams with LSH) across the whole corpus."""
    near_dup_threshold: float = 0.8
    """Estimated Jaccard similarity at which two documents are near duplicates."""
    quality_filters: str = "auto"
    """Gopher quality/repetition and C4 line filters, Unicode repair, boilerplate-line removal and
    language id: on, off, or auto (on for WARC/WET web pages, off for curated text)."""
    lang: str | None = None
    """Keep only documents in this language (ISO 639-1, e.g. en)."""
    lang_threshold: float = 0.65
    """Minimum language-id probability for --lang."""
    fix_unicode: bool = False
    """Repair mojibake with ftfy (always on with quality filters)."""
    mask_pii: bool = False
    """Replace e-mail addresses, IP addresses and phone numbers with placeholders (counted)."""
    lowercase: bool = False
    """Lower-case the text (for classic models)."""
    strip_symbols: bool = False
    """Remove punctuation and symbols (for classic models)."""
    remove_stopwords: bool = False
    """Remove English stop words (for classic models)."""
    keep_rejected: bool = True
    """Write what each filter removed under rejected/<reason>/ for audit."""
    skip_bad_records: bool = False
    """Skip (and count) malformed records and unreadable files instead of stopping."""
    workers: int = 1
    """Processes for phase 1 on this machine (each takes whole input files)."""
    rank: int = 0
    """This process's shard of the inputs (inputs[rank::world_size])."""
    world_size: int = 1
    """Number of shards the inputs are split into."""
    executor: str = "local"
    """Where phase 1 runs: local (--workers processes on this machine) or ray (Ray tasks on a local
    instance of --workers CPUs, or on the cluster at --ray-address); the output is the same."""
    ray_address: str | None = None
    """With --executor ray: the address of an existing Ray cluster (auto: the one this machine is part of);
    None starts a local instance."""
    quality: QualityConfig = field(default_factory=QualityConfig, metadata={"cli": False})

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.val_fraction < 1, f"--val-fraction must be in [0, 1), got {self.val_fraction}"),
            (doc_split_chars(self.doc_split) is not None or self.doc_split in ("auto", "blank-line", "line", "file"),
             f"--doc-split must be auto, blank-line, line, file or chars:N, got {self.doc_split!r}"),
            (self.min_chars is None or self.min_chars >= 0, f"--min-chars must be >= 0, got {self.min_chars}"),
            (self.max_chars > (self.min_chars or 0), f"--max-chars must be above --min-chars, got {self.max_chars}"),
            (self.world_size >= 1 and 0 <= self.rank < self.world_size,
             f"--rank must be in [0, --world-size), got {self.rank} of {self.world_size}"),
            (self.workers >= 1, f"--workers must be >= 1, got {self.workers}"),
            (self.executor in EXECUTORS, f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}"),
            (self.quality_filters in ("auto", "on", "off"),
             f"--quality-filters must be auto, on or off, got {self.quality_filters!r}"),
            (0 <= self.lang_threshold <= 1, f"--lang-threshold must be in [0, 1], got {self.lang_threshold}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def minhash(self) -> MinHashConfig:
        return MinHashConfig(threshold=self.near_dup_threshold)

    def output_settings(self) -> dict:
        """What must match for a work/ folder to be resumed or merged (not how it is executed)."""
        settings = asdict(self)
        for key in ("workers", "rank", "world_size", "keep_rejected", "skip_bad_records", "executor", "ray_address"):
            settings.pop(key)
        return settings


def _clear(out: Path, names) -> None:
    for name in names:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _manifest(out: Path, inputs: list, config: PrepareConfig, overwrite: bool) -> Path:
    work = out / "work"
    manifest = {"format": "lmforge.prepare_work", "version": PREPARE_FORMAT_VERSION,
                "inputs": [{"index": i, "source": str(s), "group": g} for i, (s, g) in enumerate(inputs)],
                "rank": config.rank, "world_size": config.world_size, "settings": config.output_settings(),
                "work_version": WORK_FORMAT_VERSION}
    path = work / "manifest.json"
    if path.exists() and not overwrite:
        old = read_json(path, "prepare manifest")
        if old.get("work_version") != WORK_FORMAT_VERSION:
            raise InputError(f"{path}: an unfinished prepare by an earlier lmforge (other work files); pass "
                             "--overwrite to start again.")
        if old["inputs"] != manifest["inputs"] or old["settings"] != manifest["settings"] or \
                (old["rank"], old["world_size"]) != (config.rank, config.world_size):
            raise InputError(f"{path}: an earlier, unfinished prepare used other inputs or settings; rerun it "
                             "with the same arguments to resume, or pass --overwrite to start again.")
    work.mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)
    return work


def _run_phase1(inputs: list, todo: list[int], config: PrepareConfig, work: Path) -> None:
    bar = tqdm(total=len(todo), desc="prepare", unit="input", file=sys.stderr, dynamic_ncols=True)
    # largest inputs first, so that workers finish together (longest-processing-time-first)
    jobs = sorted(((i, inputs[i][0], config, work) for i in todo), key=lambda job: -_input_size(job[1]))
    try:
        if config.executor == "ray":
            from lmforge.data.ray_executor import ray_map

            cpus = config.workers if config.workers > 1 else None
            for result in ray_map(_process_job, jobs, config.ray_address, cpus):
                bar.update(1)
                bar.set_postfix(docs=result["docs_kept"], refresh=False)
        elif config.workers == 1 or len(todo) <= 1:
            for job in jobs:
                result = process_input(*job)
                bar.update(1)
                bar.set_postfix(docs=result["docs_kept"], refresh=False)
        else:
            context = multiprocessing.get_context(START_METHOD)
            with context.Pool(min(config.workers, len(todo))) as pool:
                for _ in pool.imap_unordered(_process_job, jobs):
                    bar.update(1)
    finally:
        bar.close()


def _input_size(source) -> int:
    part = part_of(source)
    if part is not None:  # a part of a multistream dump: its byte range
        return part[2] - part[1]
    path = Path(str(source))
    return path.stat().st_size if path.is_file() else 0


def _process_job(job) -> dict:
    return process_input(*job)


def _finalize(parts: list[Part], out: Path, config: PrepareConfig, started: float, sources: str,
              ignored: dict[str, int] | None = None) -> dict:
    tmp = out / ".prepare.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    facts = load_facts(parts)  # read once, for both
    decision, duplicate_of, dedup = duplicate_decisions(parts, facts, config)
    final = write_final(parts, facts, decision, duplicate_of, config, tmp)
    if not sum(final["docs_out"].values()):
        shutil.rmtree(tmp, ignore_errors=True)
        part_stats = summarize([p.work / f"{part_name(p.index)}.json" for p in parts], final, dedup, 0)
        skipped = {reason: names for reason, names in part_stats["skipped_file_names"].items() if names}
        raise InputError(f"{sources}: empty corpus after cleaning ({part_stats['docs_in']} documents read, "
                         f"rejected: {part_stats['rejected_docs']}"
                         + (f", files skipped: {skipped}" if skipped else "") + "); add text or relax the filters.")
    if config.keep_rejected:
        collect_phase1_rejects(parts, tmp)
    stats = summarize([p.work / f"{part_name(p.index)}.json" for p in parts], final, dedup,
                      time.perf_counter() - started)
    stats = {"format": "lmforge.prepared", "version": PREPARE_FORMAT_VERSION, "config": config.output_settings(),
             "sources": sources, **stats}
    if ignored:  # files of types prepare does not read, found in the input folders
        stats["skipped_files"]["unsupported_type"] = sum(ignored.values())
        stats["ignored_file_types"] = dict(sorted(ignored.items()))
        print(f"lmforge: warning: ignored {sum(ignored.values())} files of types prepare does not read: "
              + ", ".join(f"{suffix} ({n})" for suffix, n in sorted(ignored.items())), file=sys.stderr)
    if config.val_fraction > 0 and not final["docs_out"].get("val"):
        kept = sum(final["docs_out"].values())
        few = kept < 100   # few documents: the files are probably cut into documents wrongly
        print(f"lmforge: warning: no validation documents ({kept} documents with --val-fraction "
              f"{config.val_fraction}); " + ("a document is a block between blank lines of a text file: pass "
                                             "--doc-split line (one document a line) or chars:N, " if few else "")
              + "raise --val-fraction or pass --val-source for a val split", file=sys.stderr)
    write_json(tmp / "stats.json", stats)
    plot_lengths(final["lengths"], tmp / "lengths.png")
    _clear(out, OUTPUTS)
    for name in OUTPUTS:
        if (tmp / name).exists():
            (tmp / name).rename(out / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return stats


def _parts(source) -> list:
    """A multistream .xml.bz2 dump becomes several inputs of whole streams (so workers and ranks share
    it); every other source is one input."""
    if str(source).lower().endswith(".xml.bz2"):
        return split_into_parts(Path(source))
    return [source]


def prepare_corpus(sources: list, out: Path, config: PrepareConfig, val_sources: list = (),
                   overwrite: bool = False, test_sources: list = ()) -> dict:
    """Phase 1 for this rank's inputs (skipping finished ones), then phase 2 over them."""
    out, started = Path(out), time.perf_counter()
    if config.executor == "ray":   # refused before anything is read or written
        from lmforge.data.ray_executor import check_ray

        check_ray(config.ray_address)
    if (out / "stats.json").exists() and not overwrite:
        raise InputError(f"{out}: already prepared; pass --overwrite to replace it or choose another --out.")
    # held-out sources come first: a training document that duplicates one of them is the one removed
    ignored: dict[str, int] = {}
    inputs = [(part, group) for group, listed in (("test", test_sources), ("val", val_sources), ("train", sources))
              for s in list_input_files(list(listed), ignored) for part in _parts(s)]
    described = ", ".join(map(str, sources))
    if not any(group == "train" for _, group in inputs):
        raise InputError(f"{described}: no readable input files (.txt .md .jsonl .parquet .arrow .xml.bz2 "
                         ".warc.gz .wet.gz).")
    if overwrite:
        _clear(out, OUTPUTS + ("work",))
    work = _manifest(out, inputs, config, overwrite)
    mine = [i for i in range(len(inputs)) if i % config.world_size == config.rank]
    done = finished_parts(work)
    if done & set(mine):
        print(f"lmforge: resuming: {len(done & set(mine))} of {len(mine)} inputs already done", file=sys.stderr)
    _run_phase1(inputs, [i for i in mine if i not in done], config, work)
    return _finalize([Part(work, i, inputs[i][1]) for i in mine], out, config, started, described, ignored)


def merge_prepared(shards: list[Path], out: Path, config: PrepareConfig, overwrite: bool = False) -> dict:
    """Phase 2 over the parts of several `--rank` outputs: the same result as one process on all inputs."""
    out, started = Path(out), time.perf_counter()
    if config.executor == "ray":   # refused before anything is read or written
        from lmforge.data.ray_executor import check_ray

        check_ray(config.ray_address)
    if (out / "stats.json").exists() and not overwrite:
        raise InputError(f"{out}: already prepared; pass --overwrite to replace it or choose another --out.")
    manifests = [(Path(s), read_json(Path(s) / "work" / "manifest.json", "prepare manifest")) for s in shards]
    first = manifests[0][1]
    for shard, manifest in manifests:
        if manifest.get("work_version") != WORK_FORMAT_VERSION:
            raise InputError(f"{shard}/work/manifest.json: written by an earlier lmforge (other work files); rerun "
                             "that shard's prepare with --overwrite, then merge.")
    for shard, manifest in manifests[1:]:
        if manifest["inputs"] != first["inputs"] or manifest["settings"] != first["settings"]:
            raise InputError(f"{shard}/work/manifest.json: made from other inputs or settings than "
                             f"{manifests[0][0]}; only shards of one job can be merged.")
    owner = {}
    for shard, _ in manifests:
        for index in finished_parts(shard / "work"):
            owner.setdefault(index, shard)
    missing = [item["source"] for item in first["inputs"] if item["index"] not in owner]
    if missing:
        raise InputError(f"{len(missing)} inputs have no finished part in the given shards (first: {missing[0]}); "
                         f"run the missing ranks of the {first['world_size']}-way job first.")
    parts = [Part(owner[item["index"]] / "work", item["index"], item["group"]) for item in first["inputs"]]
    settings = {k: v for k, v in first["settings"].items() if k != "quality"}
    config_used = PrepareConfig(**settings, quality=QualityConfig(**first["settings"]["quality"]),
                                keep_rejected=config.keep_rejected, workers=config.workers)
    if overwrite:
        _clear(out, OUTPUTS)
    out.mkdir(parents=True, exist_ok=True)
    return _finalize(parts, out, config_used, started, ", ".join(map(str, shards)))
