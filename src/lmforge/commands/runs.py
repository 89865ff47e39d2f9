"""`lmforge runs`: the runs under a folder, one line each: family, preset, data, steps, training time,
best validation figure (language models: the loss on the validation sample read during training, with
approximate bits per byte; task runs: the score they keep their weights by) and whether training
finished, read from their run directories.

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
    scores = [r for r in records if "val_score" in r]
    best_score = max(scores, key=lambda r: r["val_score"]) if scores else None
    per_token = _val_bytes_per_token(contract.shards) if contract.shards else None
    bpb = (best / math.log(2) / per_token if best is not None and per_token and contract.objective != "masked_lm"
           else None)
    if bpb is None and records and "bits_per_byte" in records[-1]:   # counting runs record it exactly
        bpb = records[-1]["bits_per_byte"]
    return {"run": str(run), "kind": contract.kind, "family": contract.family, "preset": contract.preset,
            "objective": contract.objective,
            "data": contract.shards or contract.corpus, "steps": max((r["step"] for r in records), default=0),
            "train_time": train[-1].get("train_time") if train else None, "best_val_loss": best,
            "approx_bits_per_byte": bpb, "trained": opened.weights_path.exists(),
            "best_val_score": best_score["val_score"] if best_score else None,
            "score_name": best_score.get("score_name") if best_score else None,
            "status": "interrupted" if opened.interrupted else "done" if opened.weights_path.exists() else "untrained"}


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


COLUMNS = ("run", "family", "preset", "data", "steps", "time s", "best val", "≈bits/B", "status")
RIGHT = ("steps", "time s", "≈bits/B")


def _cells(r: dict) -> tuple[str, ...]:
    if r["best_val_score"] is not None:   # a task run keeps its weights by a score (higher is better)
        best = f"{r['score_name'] or 'score'} {r['best_val_score']:.4f}"
    else:
        best = f"loss {r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-"
    return (Path(r["run"]).name, r["family"], r["preset"] or "-", Path(r["data"]).name if r["data"] else "-",
            str(r["steps"]), f"{r['train_time']:.0f}" if r["train_time"] is not None else "-", best,
            f"{r['approx_bits_per_byte']:.4f}" if r["approx_bits_per_byte"] is not None else "-", r["status"])


def _table(rows: list[dict]) -> str:
    """Columns as wide as their longest cell (nothing cut); language-model losses are of the validation
    sample read during training (`lmforge eval` reads the whole split)."""
    cells = [COLUMNS] + [_cells(r) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) if COLUMNS[i] in RIGHT else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    rows = list_runs(args.folder)
    if args.json:
        print(json.dumps({"runs": rows}))
    else:
        print(_table(rows) if rows else f"no runs in {args.folder}")
    return 0
