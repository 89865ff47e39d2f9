"""Translation runs side by side: one row per run (family, attention, parameters, steps, training time,
tokens/s, validation loss, and BLEU/chrF of the same validation pairs decoded the same way), and a PNG of
chrF against training time next to the validation loss curves."""

from __future__ import annotations

import json
from pathlib import Path

from lmforge.applications.translation import evaluate_translation
from lmforge.errors import InputError
from lmforge.evaluation.plots import save_figure
from lmforge.inference.translation import DecodeConfig
from lmforge.runs import open_run


def _records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        raise InputError(f"{path}: missing; {run} has not been trained (lmforge train).")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare_translation_runs(runs: list[Path], device: str = "auto", max_pairs: int = 500, beam: int = 5) -> list[dict]:
    """One row per run, all scored on the first `max_pairs` valid pairs of the first run's dataset."""
    opened = [open_run(run).require("compare", "seq2seq") for run in runs]
    corpora = {Path(o.contract.corpus or "").resolve() for o in opened}
    if len(corpora) > 1:
        raise InputError(f"{runs[1]}: trained on another parallel dataset than {runs[0]}; compare runs prepared from "
                         "the same pairs (their valid split is the common yardstick).")
    rows = []
    for run in opened:
        records = _records(run.path)
        result = evaluate_translation(run, None, "valid", DecodeConfig(beam=beam), max_pairs, device)
        train = [r for r in records if "loss" in r]
        val = [r for r in records if "val_loss" in r]
        last = train[-1] if train else {}
        model = run.raw("model")
        rows.append({"run": str(run.path), "family": run.family, "attention": model.get("attention", "cross"),
                     "params": _params(run.path), "steps": last.get("step", 0),
                     "train_time": last.get("train_time", 0.0),
                     "tokens_per_s": last.get("tokens", 0) / max(last.get("train_time", 0.0), 1e-9),
                     "val_loss": val[-1]["val_loss"] if val else None, "bleu": result["bleu"], "chrf": result["chrf"],
                     "sentences": result["sentences"], "bleu_signature": result["bleu_signature"],
                     "chrf_signature": result["chrf_signature"], "curve": records})
    return rows


def _params(run: Path) -> int:
    import math

    from safetensors import safe_open

    with safe_open(str(run / "model.safetensors"), "pt") as handle:
        return sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())  # noqa: SIM118


def table(rows: list[dict]) -> str:
    header = f"{'run':<22} {'family':<13} {'attention':<13} {'params':>8} {'steps':>6} {'time s':>7} " \
             f"{'tokens/s':>9} {'val loss':>8} {'BLEU':>6} {'chrF':>6}"
    lines = [header, "-" * len(header)]
    for r in rows:
        val = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else "n/a"
        lines.append(f"{Path(r['run']).name[:22]:<22} {r['family']:<13} {r['attention']:<13} "
                     f"{r['params'] / 1e6:>7.2f}M "
                     f"{r['steps']:>6} {r['train_time']:>7.0f} {r['tokens_per_s']:>9,.0f} {val:>8} {r['bleu']:>6.2f} "
                     f"{r['chrf']:>6.2f}")
    best = max(rows, key=lambda r: r["chrf"])
    lines.append(f"best: {Path(best['run']).name} at chrF {best['chrf']:.2f} on {best['sentences']} valid sentences "
                 f"(beam search; {rows[0]['chrf_signature']})")
    return "\n".join(lines)


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for row in rows:
        label = f"{Path(row['run']).name} ({row['family']}, {row['attention']})"
        val = [r for r in row["curve"] if "val_loss" in r]
        line, = right.plot([r["train_time"] for r in val], [r["val_loss"] for r in val], "o-", markersize=3,
                           label=label)
        left.scatter([row["train_time"]], [row["chrf"]], color=line.get_color(), label=label, s=40)
        left.annotate(f"BLEU {row['bleu']:.1f}", (row["train_time"], row["chrf"]), fontsize=7,
                      textcoords="offset points", xytext=(4, 4))
    left.set_xlabel("training time (s)")
    left.set_ylabel("chrF (valid)")
    right.set_xlabel("training time (s)")
    right.set_ylabel("validation loss (nats/target token)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("translation runs: quality against training time")
    save_figure(fig, out)
