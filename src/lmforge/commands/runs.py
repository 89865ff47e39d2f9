"""`lmforge runs`: the runs under a folder, one line each: family, preset, data, steps, training time,
best validation loss and (approximate) bits per byte, read from their run directories.

Example (CPU, instant):
    lmforge runs runs/
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from lmforge.artifacts import read_json
from lmforge.errors import InputError
from lmforge.runs import RUN_CONFIG, open_run


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("folder", type=Path, nargs="?", default=Path("runs"), help="folder holding run directories")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")


def _records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _val_bytes_per_token(shards: str) -> float | None:
    try:
        splits = read_json(Path(shards) / "meta.json", "shard metadata")["splits"]
        return splits["val"]["bytes"] / max(splits["val"]["tokens"], 1)
    except (InputError, KeyError):
        return None


def describe(run: Path) -> dict:
    """One run's line: what it is and how far it got."""
    opened = open_run(run)
    contract = opened.contract
    records = _records(run)
    train = [r for r in records if "loss" in r] or [r for r in records if "train_time" in r]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    best = min(vals) if vals else None
    per_token = _val_bytes_per_token(contract.shards) if contract.shards else None
    bpb = (best / math.log(2) / per_token if best is not None and per_token and contract.objective != "masked_lm"
           else None)
    if bpb is None and records and "bits_per_byte" in records[-1]:   # counting runs record it exactly
        bpb = records[-1]["bits_per_byte"]
    return {"run": str(run), "kind": contract.kind, "family": contract.family, "preset": contract.preset,
            "objective": contract.objective,
            "data": contract.shards or contract.corpus, "steps": max((r["step"] for r in records), default=0),
            "train_time": train[-1].get("train_time") if train else None, "best_val_loss": best,
            "approx_bits_per_byte": bpb, "trained": opened.weights_path.exists()}


def list_runs(folder: Path) -> list[dict]:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; pass the folder that holds your runs (the --out of train).")
    candidates = [folder] if (folder / RUN_CONFIG).exists() else sorted(p for p in folder.iterdir() if p.is_dir())
    rows = []
    for path in (p for p in candidates if (p / RUN_CONFIG).exists()):
        try:
            rows.append(describe(path))
        except InputError as error:  # one damaged run does not hide the others
            print(f"lmforge: warning: skipped {path}: {error}", file=sys.stderr)
    return rows


def _table(rows: list[dict]) -> str:
    header = (f"{'run':<28} {'family':<6} {'preset':<8} {'data':<20} {'steps':>7} {'time s':>7} {'best val':>9} "
              f"{'≈bits/B':>8}")
    lines = [header, "-" * len(header)]
    for r in rows:
        time = f"{r['train_time']:.0f}" if r["train_time"] is not None else "-"
        best = f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-"
        bpb = f"{r['approx_bits_per_byte']:.4f}" if r["approx_bits_per_byte"] is not None else "-"
        lines.append(f"{Path(r['run']).name[:28]:<28} {r['family']:<6} {r['preset'][:8]:<8} "
                     f"{Path(r['data']).name[:20]:<20} {r['steps']:>7} {time:>7} {best:>9} {bpb:>8}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rows = list_runs(args.folder)
    if args.json:
        print(json.dumps({"runs": rows}))
    else:
        print(_table(rows) if rows else f"no runs in {args.folder}")
    return 0
