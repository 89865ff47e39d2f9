"""Peak RSS of an LSTM training run (`lmforge train --model lstm --preset tiny`, 100 steps, then eval)
on the character shards and on shards 10x as large (the train split repeated): memmapped shards keep
memory flat. Uses GNU time's maximum resident set size of the whole command.
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


def tenfold(source: Path, out: Path) -> Path:
    if not (out / "meta.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        train = np.fromfile(source / "train.bin", dtype=np.uint16)
        with open(out / "train.bin", "wb") as handle:
            for _ in range(10):
                train.tofile(handle)
        shutil.copy(source / "val.bin", out / "val.bin")
        shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
        meta = json.loads((source / "meta.json").read_text())
        for key in ("tokens", "bytes", "documents"):
            meta["splits"]["train"][key] *= 10
        (out / "meta.json").write_text(json.dumps(meta))
    return out


def peak_rss_mb(shards: Path, run: Path) -> float:
    shutil.rmtree(run, ignore_errors=True)
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "lmforge", "train", "--data", shards,
                             "--model", "lstm", "--preset", "tiny", "--out", run, "--max-steps", "100"],
                            capture_output=True, text=True, check=True)
    return int(result.stderr.strip().splitlines()[-1]) / 1024


def main():
    base = WORK / "data" / "tokens" / "char"
    big = tenfold(base, WORK / "data" / "tokens" / "char-x10")
    print(f"# {machine()}", flush=True)
    one = peak_rss_mb(base, WORK / "runs" / "mem-x1")
    ten = peak_rss_mb(big, WORK / "runs" / "mem-x10")
    tokens = json.loads((base / "meta.json").read_text())["splits"]["train"]["tokens"]
    print(json.dumps({"train_tokens_x1": tokens, "peak_rss_mb_x1": round(one), "peak_rss_mb_x10": round(ten),
                      "ratio": round(ten / one, 3)}))


if __name__ == "__main__":
    main()
