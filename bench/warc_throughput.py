"""WARC -> clean text throughput: lmforge `prepare` vs datatrove running the equivalent steps
(WarcReader, extractor, Gopher repetition + quality, C4 filters, MinHash 4 stages) on the same files,
with 1 and 2 workers. Also peak memory of lmforge when the input grows 10x.

Input: the WARC files of ../shared/data/html_pages_warc, linked `--copies` times (cross-copy
duplicates are what MinHash must remove). datatrove runs twice: with its default Trafilatura
extractor (the FineWeb recipe) and with resiliparse (the extractor lmforge uses).
    pip install datatrove faust-cchardet python-magic orjson spacy
    python bench/warc_throughput.py [--copies 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "html_pages_warc"


def make_inputs(folder: Path, copies: int) -> int:
    folder.mkdir(parents=True)
    size = 0
    for copy in range(copies):
        for path in sorted(SHARED.glob("*.warc.gz")):
            (folder / f"c{copy:03d}-{path.name}").symlink_to(path)
            size += path.stat().st_size
    return size


LMFORGE = """
import json, resource, sys, time
from pathlib import Path
from lmforge.data.prepare import PrepareConfig, prepare_corpus
start = time.perf_counter()
config = PrepareConfig(quality_filters="on", workers=int(sys.argv[3]), keep_rejected=False)
stats = prepare_corpus([Path(sys.argv[1])], Path(sys.argv[2]), config)
print(json.dumps({"seconds": time.perf_counter() - start, "docs_out": sum(stats["docs_out"].values()),
                  "near_removed": stats["dedup"]["near_removed"], "exact_removed": stats["dedup"]["exact_removed"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

DATATROVE = """
import json, sys, time
from pathlib import Path
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.extractors.base import BaseExtractor
from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.readers import JsonlReader, WarcReader
from datatrove.pipeline.writers import JsonlWriter

class Resiliparse(BaseExtractor):
    name = "resiliparse"
    def __init__(self, timeout=10):
        super().__init__(timeout)
    def extract(self, text):
        from resiliparse.extract.html2text import extract_plain_text
        return extract_plain_text(text, main_content=True, alt_texts=False, links=False)

src, work, workers, extractor = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tasks = len(list(src.glob("*.warc.gz")))
cfg = MinhashConfig()
extract = Trafilatura(favour_precision=True, timeout=10) if extractor == "trafilatura" else Resiliparse()
def run(pipeline, n):
    logs = str(work / f"logs{time.time()}")
    LocalPipelineExecutor(pipeline=pipeline, tasks=n, workers=min(workers, n), logging_dir=logs).run()
start = time.perf_counter()
run([WarcReader(str(src), glob_pattern="*.warc.gz"), extract, GopherRepetitionFilter(), GopherQualityFilter(),
     C4QualityFilter(filter_no_terminal_punct=False), JsonlWriter(str(work / "filtered")),
     MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg)], tasks)
run([MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
    cfg.num_buckets)
run([MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=cfg)], 1)
run([JsonlReader(str(work / "filtered")), MinhashDedupFilter(input_folder=str(work / "remove")),
     JsonlWriter(str(work / "final"))], tasks)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def timed(code: str, *args) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--skip-datatrove", action="store_true")
    args = parser.parse_args()
    print(f"# {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        size = make_inputs(tmp / "in", args.copies)
        make_inputs(tmp / "in10", args.copies * 10)
        rows = {}
        for workers in (1, 2):
            result = timed(LMFORGE, tmp / "in", tmp / f"lm{workers}", workers)
            rows[f"lmforge_w{workers}"] = {**result, "mb_s": size / 1e6 / result["seconds"]}
            print(json.dumps({f"lmforge_w{workers}": rows[f"lmforge_w{workers}"]}), flush=True)
        if not args.skip_datatrove:
            for extractor in ("resiliparse", "trafilatura"):
                for workers in (1, 2):
                    result = timed(DATATROVE, tmp / "in", tmp / f"dt-{extractor}{workers}", workers, extractor)
                    rows[f"datatrove_{extractor}_w{workers}"] = {**result, "mb_s": size / 1e6 / result["seconds"]}
                    print(json.dumps({f"datatrove_{extractor}_w{workers}": rows[f"datatrove_{extractor}_w{workers}"]}),
                          flush=True)
        memory = timed(LMFORGE, tmp / "in10", tmp / "lm10x", 1)
        summary = {"warc_mb": round(size / 1e6, 1),
                   "lmforge_scaling_1_to_2": round(rows["lmforge_w2"]["mb_s"] / rows["lmforge_w1"]["mb_s"], 2),
                   "peak_rss_mb_1x": round(rows["lmforge_w1"]["peak_rss_mb"]),
                   "peak_rss_mb_10x": round(memory["peak_rss_mb"])}
        for key, row in rows.items():
            if key.startswith("datatrove"):
                workers = key[-1]
                summary[f"ratio_vs_{key}"] = round(rows[f"lmforge_w{workers}"]["mb_s"] / row["mb_s"], 2)
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
