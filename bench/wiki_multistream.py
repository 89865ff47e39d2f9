"""One Wikipedia dump shared by workers: the dev excerpt rewritten as a multistream dump (a header
stream, one stream per page here, a footer stream, as `pages-articles-multistream` files are laid
out) and prepared with `lmforge prepare --workers 1` and `--workers 2`; articles/s of the whole
command, whether the outputs are identical, and gensim `WikiCorpus` with 2 processes on the same file.
    python bench/wiki_multistream.py [--copies 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine

DUMP = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikipedia_dump_sample" / "enwiki-sample.xml.bz2"


def multistream(out: Path, copies: int) -> int:
    """The excerpt's pages `copies` times (each copy with new page ids and a numbered title, so that
    the copies are distinct articles to the reader, though the text repeats), one page per stream."""
    xml = bz2.decompress(DUMP.read_bytes()).decode()
    head, rest = xml.split("<page>", 1)
    pages = ["<page>" + p for p in ("<page>" + rest).split("<page>")[1:]]
    pages[-1] = pages[-1].replace("</mediawiki>", "")
    streams = [head.encode()]
    for copy in range(copies):
        for number, page in enumerate(pages):
            page = re.sub(r"<id>(\d+)</id>", lambda m, copy=copy: f"<id>{int(m[1]) + copy * 10**7}</id>", page, count=1)
            streams.append(page.replace("</title>", f" {copy}.{number}</title>", 1).encode())
    streams.append(b"</mediawiki>")
    out.write_bytes(b"".join(bz2.compress(s) for s in streams))
    return len(pages) * copies


NO_DEDUP = ("--near-dedup", "false", "--dedup", "false")  # the copies of the excerpt are exact duplicates


def prepare(dump: Path, out: Path, workers: int, options=NO_DEDUP) -> tuple[float, dict]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lmforge", "prepare", dump, "--out", out, "--workers", str(workers),
                    *options], check=True, capture_output=True)
    return time.perf_counter() - start, json.loads((out / "stats.json").read_text())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command; the fastest is reported")
    args = parser.parse_args()
    print(f"# {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "enwiki-multistream.xml.bz2"
        pages = multistream(dump, args.copies)
        megabytes = dump.stat().st_size / 1e6
        rows = {}
        for workers in (1, 2):
            runs = [prepare(dump, Path(tmp) / f"out{workers}", workers) for _ in range(args.repeats)]
            seconds, stats = min(runs, key=lambda run: run[0])
            articles = sum(stats["docs_out"].values())
            rows[workers] = {"workers": workers, "inputs": stats["inputs"], "articles": articles,
                             "seconds": round(seconds, 2), "all_runs_s": [round(r[0], 2) for r in runs],
                             "articles_per_s": round(articles / seconds, 1), "pages_per_s": round(pages / seconds, 1),
                             "dump_mb_per_s": round(megabytes / seconds, 2)}
            print(json.dumps({"pages": pages, "dump_mb": round(megabytes, 1), **rows[workers]}), flush=True)
        same = all(gzip.decompress((Path(tmp) / "out1" / "clean" / f.name).read_bytes()) ==
                   gzip.decompress(f.read_bytes()) for f in (Path(tmp) / "out2" / "clean").iterdir())
        print(json.dumps({"scaling_1_to_2_workers": round(rows[1]["seconds"] / rows[2]["seconds"], 2),
                          "identical_output": same}), flush=True)
        # the documented command as it is (exact and MinHash near-dedup on): what a user sees
        defaults = {workers: min(prepare(dump, Path(tmp) / f"def{workers}", workers, ())[0]
                                 for _ in range(args.repeats)) for workers in (1, 2)}
        print(json.dumps({"default_settings_seconds": {w: round(t, 2) for w, t in defaults.items()},
                          "default_settings_scaling": round(defaults[1] / defaults[2], 2)}), flush=True)
        gensim = [gensim_run(dump) for _ in range(args.repeats)]
        if all(gensim):
            seconds, articles = min(gensim)
            print(json.dumps({"gensim_wikicorpus_2_processes": {
                "articles": articles, "seconds": round(seconds, 2), "all_runs_s": [round(g[0], 2) for g in gensim],
                "articles_per_s": round(articles / seconds, 1), "pages_per_s": round(pages / seconds, 1)},
                "lmforge_2_workers_vs_gensim_articles_per_s": round(rows[2]["articles_per_s"] * seconds / articles, 2),
                "lmforge_2_workers_vs_gensim_same_dump_time": round(seconds / rows[2]["seconds"], 2),
                "lmforge_2_workers_default_settings_vs_gensim_time": round(seconds / defaults[2], 2)}))


def gensim_run(dump: Path) -> tuple[float, int] | None:
    """gensim's WikiCorpus text extraction with 2 processes on the same file (its defaults), timed as a
    whole command like the lmforge runs: (seconds, articles), or None without gensim (refbench extra)."""
    code = ("import logging, sys; logging.disable(logging.WARNING)\n"
            "from gensim.corpora.wikicorpus import WikiCorpus\n"
            "print(sum(1 for _ in WikiCorpus(sys.argv[1], dictionary={}, processes=2).get_texts()))\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(dump)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    return (wall, int(out.stdout.strip())) if out.returncode == 0 else None


if __name__ == "__main__":
    main()
