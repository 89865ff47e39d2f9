"""FSDP against DDP on 2 CPU processes (gloo), same model, data, seed and global batch: the loss curves, the
parameter + optimizer bytes each process holds, and tokens/s. Then the sharded checkpoint resumed on one
process. Uses the quickstart's shards (bench/run_all.py makes them) or --shards.
    python bench/fsdp_memory.py [--shards DIR] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine

QUICKSTART_SHARDS = "/tmp/lmforge-bench-quickstart/data/tokens/bpe"
MODEL = ["--n-layers", "4", "--d-model", "256", "--n-heads", "4", "--max-seq-len", "128", "--dropout", "0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def train(out: Path, shards: str, steps: int, parallel: str | None, port: int) -> dict:
    args = ["train", "--data", shards, "--out", str(out), *MODEL, "--batch-size", "4", "--max-steps", str(steps),
            "--warmup-steps", "5", "--log-every", "1", "--eval-every", str(steps), "--eval-windows", "8",
            "--checkpoint-every", str(steps // 2), "--seed", "1", "--threads", "1", "--json"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
                "-m", "lmforge"] if parallel else [sys.executable, "-m", "lmforge"]
    extra = ["--parallel", parallel] if parallel else []
    done = subprocess.run([*launcher, *args, *extra], env=ENV, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", default=QUICKSTART_SHARDS)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if not Path(args.shards, "meta.json").exists():
        subprocess.run([sys.executable, "-m", "lmforge", "quickstart", "--out", str(Path(args.shards).parents[2])],
                       check=True, capture_output=True)
    print(f"# {machine()}; 2 processes x 1 thread, gloo; {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ddp = train(root / "ddp", args.shards, args.steps, "ddp", 29701)
        fsdp = train(root / "fsdp", args.shards, args.steps, "fsdp", 29702)
        a, b = losses(root / "ddp"), losses(root / "fsdp")
        gaps = sorted(abs(a[s] - b[s]) / abs(a[s]) for s in a)
        gap = gaps[-1]
        print(json.dumps({"params_M": round(ddp["params"] / 1e6, 2), "steps": args.steps,
                          "ddp_state_MB_per_rank": round(ddp["state_bytes_per_rank"] / 1e6, 2),
                          "fsdp_state_MB_per_rank": round(fsdp["state_bytes_per_rank"] / 1e6, 2),
                          "fsdp_vs_ddp_memory": round(fsdp["state_bytes_per_rank"] / ddp["state_bytes_per_rank"], 3),
                          "max_relative_loss_gap": float(f"{gap:.2e}"),
                          "median_relative_loss_gap": float(f"{gaps[len(gaps) // 2]:.2e}"),
                          "second_largest_relative_loss_gap": float(f"{gaps[-2]:.2e}"),
                          "ddp_tok_s": round(ddp["tokens_per_s"]), "fsdp_tok_s": round(fsdp["tokens_per_s"]),
                          "fsdp_vs_ddp_speed": round(fsdp["tokens_per_s"] / ddp["tokens_per_s"], 2)}), flush=True)
        shutil.rmtree(root / "fsdp" / "checkpoints" / f"step_{args.steps:08d}")
        resumed = subprocess.run([sys.executable, "-m", "lmforge", "train", "--resume", str(root / "fsdp"),
                                  "--batch-size", "8", "--json"], env=ENV, capture_output=True, text=True, check=True)
        again = losses(root / "fsdp")
        tail = max(abs(again[s] - a[s]) / abs(a[s]) for s in a if s > args.steps // 2)
        print(json.dumps({"resumed_on_one_process_from_step": args.steps // 2,
                          "final_train_loss": json.loads(resumed.stdout.strip().splitlines()[-1])["train_loss"],
                          "max_relative_gap_to_uninterrupted": float(f"{tail:.2e}")}))


if __name__ == "__main__":
    main()
