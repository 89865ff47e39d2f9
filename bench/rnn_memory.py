"""Peak RSS of an LSTM training run (`lmforge train --model lstm --preset tiny`, 100 steps) on the character
shards and on shards of about 1 GB (the train split repeated): memmapped shards keep memory flat, and a
train split loaded into memory would add its whole size, twice the baseline's RSS. Uses GNU time's maximum
resident set size of the whole command.
    python bench/rnn_memory.py          (run bench/cli_defaults.py first: it makes the shards)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from common import machine

WORK = Path("/tmp/lmforge-bench-cli")


def repeated(source: Path, out: Path, target_bytes: float) -> tuple[Path, int]:
    """Shards whose train split is the source's repeated to about `target_bytes`; (folder, copies)."""
    train = np.fromfile(source / "train.bin", dtype=np.uint16)
    copies = max(1, round(target_bytes / train.nbytes))
    if not (out / "meta.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "train.bin", "wb") as handle:
            for _ in range(copies):
                train.tofile(handle)
        shutil.copy(source / "val.bin", out / "val.bin")
        shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
        meta = json.loads((source / "meta.json").read_text())
        for key in ("tokens", "bytes", "documents"):
            meta["splits"]["train"][key] *= copies
        (out / "meta.json").write_text(json.dumps(meta))
    return out, copies


def peak_rss_mb(shards: Path, run: Path) -> float:
    shutil.rmtree(run, ignore_errors=True)
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "lmforge", "train", "--data", shards,
                             "--model", "lstm", "--preset", "tiny", "--out", run, "--max-steps", "100"],
                            capture_output=True, text=True, check=True)
    return int(result.stderr.strip().splitlines()[-1]) / 1024


def main():
    base = WORK / "data" / "tokens" / "char"
    big, copies = repeated(base, WORK / "data" / "tokens" / "char-1gb", 1e9)
    print(f"# {machine()}", flush=True)
    one = peak_rss_mb(base, WORK / "runs" / "mem-x1")
    many = peak_rss_mb(big, WORK / "runs" / "mem-1gb")
    sizes = [(folder / "train.bin").stat().st_size / 1e6 for folder in (base, big)]
    print(json.dumps({"train_mb": round(sizes[0], 1), "big_train_mb": round(sizes[1]), "copies": copies,
                      "peak_rss_mb": round(one), "big_peak_rss_mb": round(many), "ratio": round(many / one, 3),
                      "rss_if_loaded_mb": round(one + sizes[1])}))


if __name__ == "__main__":
    main()
