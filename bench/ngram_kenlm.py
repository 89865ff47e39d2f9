"""n-gram LMs: `lmforge ngram train` against KenLM's `lmplz`, both run here, in this script, on the same files:
the exact tokenization of ../shared/data/kenlm_reference (Moby Dick) and the State of the Union speeches
through the same tokenizer. KenLM is built from its source distribution (`pip download kenlm --no-binary`,
then its CMake build; it needs cmake and Boost: `apt-get install cmake libboost-program-options-dev
libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev`). Both sides
are timed as whole commands (/usr/bin/time: wall time and peak RSS); perplexities of lmplz's ARPA come from
KenLM's own `query`, ours from `lmforge eval`; query speed (n-gram lookups/s) against the `kenlm` Python
module's per-sentence `full_scores`.
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
RUNS = [("moby", 3), ("moby", 5), ("sotu", 3), ("sotu", 5)]
LMPLZ_MEMORY = "10%"   # lmplz's sorting memory (-S); its default, 80% of RAM, only makes its RSS look large
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


def timed(command: list, stdin=None) -> tuple[str, float, float]:
    """Run a command under /usr/bin/time: (its stdout, wall seconds, peak RSS GB)."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, command)], capture_output=True, text=True,
                          check=True, stdin=stdin)
    wall = time.perf_counter() - start
    return done.stdout, wall, int(done.stderr.strip().splitlines()[-1]) / 1e6


def lmforge(*args) -> tuple[dict, float, float]:
    out, wall, rss = timed([sys.executable, "-m", "lmforge", *args])
    return (json.loads(out) if out.strip() else {}), wall, rss


def kenlm_binaries() -> dict[str, Path]:
    """lmplz and query, built once from the kenlm source distribution into WORK/kenlm."""
    bin_dir = WORK / "kenlm" / "build" / "bin"
    if not (bin_dir / "lmplz").exists():
        source = WORK / "kenlm-src"
        source.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "kenlm",
                        "-d", source], check=True)
        archive = next(source.glob("kenlm-*.tar.gz"))
        subprocess.run(["tar", "xzf", archive, "-C", source], check=True)
        tree = next(p for p in source.iterdir() if p.is_dir())
        build = WORK / "kenlm" / "build"
        build.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["cmake", tree, "-DCMAKE_BUILD_TYPE=Release"], cwd=build, check=True, capture_output=True)
            subprocess.run(["make", "-j2", "lmplz", "query"], cwd=build, check=True, capture_output=True)
        except subprocess.CalledProcessError as error:
            raise SystemExit(f"building KenLM failed ({error.stderr.decode()[-500:]}); it needs cmake and Boost, see "
                             "this script's docstring") from None
    return {"lmplz": bin_dir / "lmplz", "query": bin_dir / "query"}


def lmplz_row(kenlm: dict, train: Path, valid: Path, order: int, out: Path) -> dict:
    """lmplz's model of `train` (its defaults but -S), timed as a whole command; query's perplexities on `valid`."""
    arpa = out / f"lmplz_{order}.arpa"
    out.mkdir(parents=True, exist_ok=True)
    with opened(train) as text:
        _, wall, rss = timed([kenlm["lmplz"], "-o", order, "-S", LMPLZ_MEMORY, "-T", out, "--arpa", arpa], text)
    with opened(valid) as text:
        summary, _, _ = timed([kenlm["query"], "-v", "summary", arpa], text)
    found = dict(re.findall(r"Perplexity (including|excluding) OOVs:\s+([0-9.]+)", summary))
    return {"ppl_lmplz": float(found["including"]), "ppl_excl_oov_lmplz": float(found["excluding"]),
            "build_s_lmplz": wall, "rss_gb_lmplz": rss, "arpa_lmplz": arpa}


def opened(path: Path):
    """A file handle of the plain text (lmplz and query read stdin; a .gz is unpacked first)."""
    if path.suffix != ".gz":
        return open(path, "rb")
    plain = WORK / path.name.removesuffix(".gz")
    if not plain.exists():
        plain.write_bytes(gzip.decompress(path.read_bytes()))
    return open(plain, "rb")


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
    kenlm = kenlm_binaries()
    sotu_train, sotu_valid = sotu_files()
    corpora = {"moby": (REF / "moby_train.tok.txt.gz", REF / "moby_valid.tok.txt.gz"), "sotu": (sotu_train, sotu_valid)}
    rows = []
    for corpus, order in RUNS:
        train, valid = corpora[corpus]
        run = WORK / f"{corpus}_kn{order}"
        built, wall, rss = lmforge("ngram", "train", train, "--words", "whitespace", "--order", order, "--out", run,
                                   "--overwrite", "--json")
        evaluated, _, _ = lmforge("eval", "--run", run, "--data", valid, "--json")
        reference = lmplz_row(kenlm, train, valid, order, WORK / f"{corpus}_lmplz")
        row = {"corpus": corpus, "order": order, "words": built["tokens"], "ppl": evaluated["perplexity"],
               "ppl_excl_oov": evaluated["perplexity_excluding_oov"], "build_s": wall, "rss_gb": rss, **reference}
        if order == 5:
            row.update(query_speed(run, valid, reference["arpa_lmplz"]))
        row.pop("arpa_lmplz")
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{machine()}")
    print(f"{'corpus':<6} {'N':>2} {'words':>9} {'ppl':>9} {'lmplz':>9} {'ratio':>7} {'ppl-oov':>8} {'lmplz':>8} "
          f"{'build s':>8} {'lmplz s':>8} {'ratio':>6} {'RSS GB':>7} {'lmplz':>7}")
    for r in rows:
        print(f"{r['corpus']:<6} {r['order']:>2} {r['words']:>9,} {r['ppl']:>9.3f} {r['ppl_lmplz']:>9.3f} "
              f"{r['ppl'] / r['ppl_lmplz']:>7.4f} {r['ppl_excl_oov']:>8.3f} {r['ppl_excl_oov_lmplz']:>8.3f} "
              f"{r['build_s']:>8.1f} {r['build_s_lmplz']:>8.1f} {r['build_s'] / r['build_s_lmplz']:>6.2f} "
              f"{r['rss_gb']:>7.2f} {r['rss_gb_lmplz']:>7.2f}")
    for r in rows:
        if "lmforge_lookups_per_s" in r:
            kenlm = r.get("kenlm_python_lookups_per_s")
            print(f"query {r['corpus']} 5-gram: lmforge {r['lmforge_lookups_per_s'] / 1e6:.2f}M lookups/s"
                  + (f", kenlm Python module {kenlm / 1e6:.2f}M/s ({r['lmforge_lookups_per_s'] / kenlm:.1f}x)"
                     if kenlm else ""))


if __name__ == "__main__":
    main()
