"""Wikipedia dump -> clean text, articles/s: lmforge's dump reader (and the whole `prepare`) vs
gensim's `WikiCorpus` text extraction, on ../shared/data/wikipedia_dump_sample (enwiki excerpt).
    python bench/wiki_throughput.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from common import machine

DUMP = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikipedia_dump_sample" / "enwiki-sample.xml.bz2"


def best_of(fn, repeats: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    from gensim.corpora.wikicorpus import WikiCorpus

    from lmforge.data.prepare import PrepareConfig, prepare_corpus
    from lmforge.data.readers import ReadOptions, read_file

    print(f"# {machine()}; {DUMP.name} ({DUMP.stat().st_size / 1e6:.1f} MB bz2)")
    ours_time, ours_n = best_of(lambda: sum(1 for _ in read_file(DUMP, ReadOptions())), args.repeats)

    def full_prepare():
        with tempfile.TemporaryDirectory() as tmp:
            stats = prepare_corpus([DUMP], Path(tmp) / "out", PrepareConfig(keep_rejected=False))
        return sum(stats["docs_out"].values())

    prep_time, prep_n = best_of(full_prepare, args.repeats)
    rows = {"lmforge_reader": (ours_time, ours_n), "lmforge_prepare": (prep_time, prep_n)}
    for processes in (1, 2):
        def gensim_texts(processes=processes):
            corpus = WikiCorpus(str(DUMP), dictionary={}, processes=processes)  # its defaults
            return sum(1 for _ in corpus.get_texts())
        rows[f"gensim_wikicorpus_p{processes}"] = best_of(gensim_texts, args.repeats)
    result = {name: {"articles": n, "seconds": round(t, 3), "articles_per_s": round(n / t, 1)}
              for name, (t, n) in rows.items()}
    result["ratio_reader_vs_gensim_p1"] = round(result["lmforge_reader"]["articles_per_s"] /
                                                result["gensim_wikicorpus_p1"]["articles_per_s"], 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
