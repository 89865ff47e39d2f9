"""`prepare` of WARC files with --executor ray against --workers 2 on this machine (2 CPUs each), same files:
MB/s of the whole command (Ray's start-up included) and of phase 1 alone, and whether the outputs are
byte-identical (clean/ files; stats.json apart from its timings). Then `tokenize` both ways.
Input: the WARC files of ../shared/data/html_pages_warc, linked --copies times.
    pip install 'lmforge[ray]'
    python bench/ray_throughput.py [--copies 8 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine
from warc_throughput import make_inputs

TIMINGS = ("seconds", "mb_per_s", "phase1_cpu_seconds")


def lmforge(*args) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    if "ray" in args:   # a command's Ray processes outlive it briefly: let them go before the next is timed
        _wait_for_ray_to_exit()
    return seconds


def _wait_for_ray_to_exit(limit: float = 30.0) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        found = subprocess.run(["pgrep", "-f", "raylet|gcs_server|default_worker"], capture_output=True, text=True)
        if not found.stdout.strip():
            return
        time.sleep(0.5)


def same_output(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in (a / "clean").iterdir())
    if names != sorted(p.name for p in (b / "clean").iterdir()):
        return False
    stats = [{k: v for k, v in json.loads((d / "stats.json").read_text()).items() if k not in TIMINGS} for d in (a, b)]
    return stats[0] == stats[1] and all((a / "clean" / n).read_bytes() == (b / "clean" / n).read_bytes()
                                        for n in names)


def ray_start_seconds() -> float:
    """What starting a local 2-CPU Ray instance costs (part of every --executor ray command here)."""
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    seconds = time.perf_counter() - started
    ray.shutdown()
    return seconds


def prepare_both(root: Path, copies: int, ray_start: float) -> None:
    size = make_inputs(root / "in", copies)
    files = sorted((root / "in").iterdir())
    common = ["--quality-filters", "on", "--workers", "2"]
    seconds = {"workers": lmforge("prepare", *files, "--out", root / "local", *common),
               "ray": lmforge("prepare", *files, "--out", root / "ray", *common, "--executor", "ray")}
    print(json.dumps({"input_MB": round(size / 1e6, 1), "files": len(files),
                      "workers2_MB_s": round(size / 1e6 / seconds["workers"], 2),
                      "ray_MB_s": round(size / 1e6 / seconds["ray"], 2),
                      "ray_vs_workers": round(seconds["workers"] / seconds["ray"], 2),
                      "ray_start_s": round(ray_start, 1),
                      "ray_vs_workers_after_ray_start": round(seconds["workers"] / (seconds["ray"] - ray_start), 2),
                      "identical_output": same_output(root / "local", root / "ray")}), flush=True)


def tokenize_both(root: Path) -> None:
    lmforge("tokenizer", "train", root / "local", "--kind", "bpe", "--vocab-size", "4096", "--out", root / "tok")
    local = lmforge("tokenize", root / "local", "--tokenizer", root / "tok", "--out", root / "t-local")
    ray = lmforge("tokenize", root / "local", "--tokenizer", root / "tok", "--out", root / "t-ray", "--executor", "ray")
    identical = all((root / "t-local" / n).read_bytes() == (root / "t-ray" / n).read_bytes()
                    for n in ("train.bin", "val.bin", "meta.json"))
    print(json.dumps({"tokenize_local_s": round(local, 2), "tokenize_ray_s": round(ray, 2),
                      "identical_shards": identical}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, nargs="+", default=[8, 40])
    args = parser.parse_args()
    print(f"# {machine()}; {time.strftime('%Y-%m-%d')}; ray {__import__('ray').__version__}")
    start = ray_start_seconds()
    _wait_for_ray_to_exit()   # the measuring instance's processes gone before anything is timed
    for index, copies in enumerate(args.copies):
        with tempfile.TemporaryDirectory() as tmp:
            prepare_both(Path(tmp), copies, start)
            if index == 0:
                tokenize_both(Path(tmp))


if __name__ == "__main__":
    main()
