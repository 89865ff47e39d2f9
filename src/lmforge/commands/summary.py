"""`lmforge summary`: a run's model layer by layer — output shapes and parameter counts of every
module (any family) — and a diagram of its top-level structure as a PNG.

Example (CPU, seconds):
    lmforge summary --run runs/tiny --out runs/tiny/architecture.png
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from lmforge.evaluation.plots import save_figure
from lmforge.inference.loading import load
from lmforge.models.summary import LayerRow, example_inputs, layer_rows


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run directory")
    parser.add_argument("--out", type=Path, default=None, help="diagram PNG (default: RUN/architecture.png)")
    parser.add_argument("--tokens", type=int, default=16, help="length of the example input (default 16)")
    parser.add_argument("--depth", type=int, default=1, help="deepest module level in the table (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _table(rows: list[LayerRow], depth: int, total: int) -> str:
    lines = [f"{'layer':<40} {'type':<18} {'output shape':<18} {'params':>10}", "-" * 89]
    for row in rows:
        if row.depth <= depth:
            shape = "x".join(map(str, row.output_shape)) if row.output_shape else "-"
            lines.append(f"{'  ' * row.depth + row.name:<40} {row.kind:<18} {shape:<18} "
                         f"{row.params:>10,}")
    lines.append(f"total parameters: {total:,}")
    return "\n".join(lines)


def _top_level(rows: list[LayerRow]) -> list[tuple[str, str, int]]:
    """(label, output shape, params) per top-level stage; repeated blocks (blocks.0 .. blocks.N) become one."""
    stages: list[tuple[str, str, int]] = []
    for row in rows:
        group = re.match(r"^([^.]+)\.(\d+)$", row.name)
        if "." in row.name and not group:
            continue
        params = row.params
        shape = "x".join(map(str, row.output_shape)) if row.output_shape else ""
        if group:
            if stages and stages[-1][0].startswith(group.group(1) + ":"):
                label, _, total = stages[-1]
                count = int(label.split("× ")[0].split(": ")[1]) + 1
                stages[-1] = (f"{group.group(1)}: {count}× {row.kind}", shape, total + params)
                continue
            stages.append((f"{group.group(1)}: 1× {row.kind}", shape, params))
        else:
            stages.append((f"{row.name}: {row.kind}", shape, params))
    return stages


def plot(stages: list[tuple[str, str, int]], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 0.9 * len(stages) + 1.0), dpi=100)
    for i, (label, shape, params) in enumerate(stages):
        y = len(stages) - i
        ax.add_patch(plt.Rectangle((0.05, y - 0.35), 0.9, 0.7, facecolor="#dbe9f6", edgecolor="#3b6ea5"))
        ax.text(0.5, y + 0.1, label, ha="center", va="center", fontsize=10, weight="bold")
        ax.text(0.5, y - 0.17, f"out {shape}   {params:,} params", ha="center", va="center", fontsize=8)
        if i + 1 < len(stages):
            ax.annotate("", xy=(0.5, y - 0.62), xytext=(0.5, y - 0.37), arrowprops={"arrowstyle": "->"})
    ax.set_xlim(0, 1)
    ax.set_ylim(0.3, len(stages) + 0.7)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    save_figure(fig, out)


def run(args: argparse.Namespace) -> int:
    loaded = load(args.run, "summary", ("lm", "seq2seq"))
    model = loaded.model
    length = min(args.tokens, getattr(model.config, "max_seq_len", args.tokens))
    rows = layer_rows(model, example_inputs(model, length))
    total = sum(p.numel() for p in model.parameters())
    out = args.out or Path(args.run) / "architecture.png"
    plot(_top_level(rows), f"{loaded.run.family} ({loaded.run.contract.preset}), {total / 1e6:.2f}M parameters, "
                           f"input 1x{length}", out)
    print(_table(rows, args.depth, total) + f"\ndiagram: {out}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps({"family": loaded.run.family, "params": total, "diagram": str(out),
                          "layers": [{"name": r.name, "type": r.kind, "output_shape": r.output_shape,
                                      "params": r.params} for r in rows]}))
    return 0
