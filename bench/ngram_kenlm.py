"""n-gram LMs: `lmforge ngram train` against KenLM's `lmplz`, on the exact tokenization of the reference
files in ../shared/data/kenlm_reference (its README lists lmplz's perplexities and build times; lmplz
itself is not installed here). Reports perplexity incl./excl. OOV side by side, build wall time and
peak RSS of the documented command, and query speed (n-gram lookups/s) against the `kenlm` Python
module's per-sentence `full_scores` when it is installed.
    python bench/ngram_kenlm.py
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REF = SHARED / "kenlm_reference"
WORK = Path("/tmp/lmforge-bench-ngram")
LMPLZ = {  # corpus, order -> (ppl incl. OOV, excl. OOV, lmplz seconds, lmplz peak RSS GB), from REF/README.md
    ("moby", 3): (318.031, 239.158, 2.8, 0.6), ("moby", 5): (315.122, 237.064, 2.8, 0.5),
    ("sotu", 3): (144.272, 137.353, 7.5, 0.6), ("sotu", 5): (136.282, 129.730, 13.0, 0.5),
}
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")   # REF/tokenize_words.py


def sotu_files() -> tuple[Path, Path]:
    """Each speech's text, line by line through the reference tokenization (train and valid)."""
    out = []
    for split in ("train", "valid"):
        path = WORK / f"sotu_{split}.tok.txt"
        if not path.exists():
            lines = []
            with gzip.open(SHARED / "sotu_speeches" / f"{split}.jsonl.gz", "rt") as handle:
                for record in handle:
                    for line in json.loads(record)["text"].splitlines():
                        tokens = TOKEN.findall(line.lower())
                        if tokens:
                            lines.append(" ".join(tokens))
            path.write_text("\n".join(lines) + "\n")
        out.append(path)
    return out[0], out[1]


def lmforge(*args) -> tuple[dict, float, float]:
    """Run the CLI under /usr/bin/time: (its JSON, wall seconds, peak RSS GB)."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "lmforge", *map(str, args)],
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    rss_gb = int(done.stderr.strip().splitlines()[-1]) / 1e6
    return (json.loads(done.stdout) if done.stdout.strip() else {}), wall, rss_gb


def query_speed(run: Path, valid: Path, arpa: Path | None) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from lmforge.ngram.store import load_ngram_run

    loaded = load_ngram_run(run)
    opener = gzip.open if valid.suffix == ".gz" else open
    with opener(valid, "rt") as handle:
        lines = handle.read().splitlines() * 5
    sentences = [line.split() for line in lines]
    start = time.perf_counter()
    scored = loaded.model.score_sentences(sentences)
    ours = len(scored.logp) / (time.perf_counter() - start)
    result = {"lmforge_lookups_per_s": ours}
    try:
        import kenlm
    except ImportError:
        return result
    model = kenlm.Model(str(arpa))
    start = time.perf_counter()
    n = sum(1 for line in lines for _ in model.full_scores(line))
    result["kenlm_python_lookups_per_s"] = n / (time.perf_counter() - start)
    return result


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    sotu_train, sotu_valid = sotu_files()
    corpora = {"moby": (REF / "moby_train.tok.txt.gz", REF / "moby_valid.tok.txt.gz"), "sotu": (sotu_train, sotu_valid)}
    rows = []
    for (corpus, order), (ref_ppl, ref_ppl_known, ref_s, ref_rss) in LMPLZ.items():
        train, valid = corpora[corpus]
        run = WORK / f"{corpus}_kn{order}"
        built, wall, rss = lmforge("ngram", "train", train, "--words", "whitespace", "--order", order, "--out", run,
                                   "--overwrite", "--json")
        evaluated, _, _ = lmforge("eval", "--run", run, "--data", valid, "--json")
        row = {"corpus": corpus, "order": order, "words": built["tokens"], "ppl": evaluated["perplexity"],
               "ppl_lmplz": ref_ppl, "ppl_excl_oov": evaluated["perplexity_excluding_oov"],
               "ppl_excl_oov_lmplz": ref_ppl_known, "build_s": wall, "build_s_lmplz": ref_s, "rss_gb": rss,
               "rss_gb_lmplz": ref_rss}
        if order == 5:
            arpa = run / "model.arpa"
            lmforge("ngram", "export", run, "--arpa", arpa)
            row.update(query_speed(run, valid, arpa))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{machine()}")
    print(f"{'corpus':<6} {'N':>2} {'words':>9} {'ppl':>9} {'lmplz':>9} {'ratio':>7} {'ppl-oov':>8} {'lmplz':>8} "
          f"{'build s':>8} {'lmplz s':>8} {'ratio':>6} {'RSS GB':>7}")
    for r in rows:
        print(f"{r['corpus']:<6} {r['order']:>2} {r['words']:>9,} {r['ppl']:>9.3f} {r['ppl_lmplz']:>9.3f} "
              f"{r['ppl'] / r['ppl_lmplz']:>7.4f} {r['ppl_excl_oov']:>8.3f} {r['ppl_excl_oov_lmplz']:>8.3f} "
              f"{r['build_s']:>8.1f} {r['build_s_lmplz']:>8.1f} {r['build_s'] / r['build_s_lmplz']:>6.2f} "
              f"{r['rss_gb']:>7.2f}")
    for r in rows:
        if "lmforge_lookups_per_s" in r:
            kenlm = r.get("kenlm_python_lookups_per_s")
            print(f"query {r['corpus']} 5-gram: lmforge {r['lmforge_lookups_per_s'] / 1e6:.2f}M lookups/s"
                  + (f", kenlm Python module {kenlm / 1e6:.2f}M/s ({r['lmforge_lookups_per_s'] / kenlm:.1f}x)"
                     if kenlm else ""))


if __name__ == "__main__":
    main()
