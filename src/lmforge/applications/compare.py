"""Runs side by side: one row per run (family, parameters, tokens/s, training time, validation loss and
bits per byte on the same validation text, with its training curve), and a PNG of the loss curves
against training time and against tokens seen."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lmforge.applications.evaluate import EvalConfig, evaluate
from lmforge.data.shards import read_meta
from lmforge.errors import InputError
from lmforge.evaluation.plots import save_figure
from lmforge.ngram.evaluate import val_identity
from lmforge.ngram.store import WEIGHTS as NGRAM_WEIGHTS
from lmforge.runs import open_run


def _metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        raise InputError(f"{path}: missing; {run} has not been trained (lmforge train).")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _val_identity(run: Path) -> tuple[str, tuple]:
    """(shards, (bytes, documents) of the val split): equal for two tokenizations of the same text."""
    contract = open_run(run).require("compare", "lm", "ngram").contract
    if contract.corpus and not contract.shards:   # a counting model (n-gram) read the prepared text itself
        return contract.corpus, val_identity(Path(contract.corpus)) or (None, None)
    meta = read_meta(Path(contract.shards))
    val = meta.splits.get("val", {})
    return contract.shards, (val.get("bytes"), val.get("documents"))


def compare_runs(runs: list[Path], device: str = "auto") -> list[dict]:
    """One row per run; refuses runs whose validation text differs."""
    identities = {run: _val_identity(run) for run in runs}
    reference = identities[runs[0]]
    for run, identity in identities.items():
        if identity[1] != reference[1]:
            raise InputError(f"{run}: its validation split ({identity[0]}: {identity[1][0]} bytes, {identity[1][1]} "
                             f"documents) is not the one of {runs[0]} ({reference[0]}: {reference[1][0]} bytes, "
                             f"{reference[1][1]} documents); compare runs prepared from the same corpus and split.")
    rows = []
    for run in runs:
        records = _metrics(run)
        result = evaluate(EvalConfig(run=run, device=device, pppl_windows=0))
        # neural runs log train steps ("loss"); a counting run writes one record when it is built
        train = [r for r in records if "loss" in r] or [r for r in records if "train_time" in r]
        last = train[-1] if train else {}
        rows.append({
            "run": str(run), "family": result["family"], "objective": result["objective"],
            "params": _params(run), "steps": last.get("step", 0), "tokens": last.get("tokens", 0),
            "train_time": last.get("train_time", 0.0),
            "tokens_per_s": last.get("tokens", 0) / max(last.get("train_time", 0.0), 1e-9),
            "val_loss": result["val_loss"], "bits_per_byte": result.get("bits_per_byte"),
            "oov_tokens": result.get("oov_tokens", 0),
            "bytes_per_token": result["bytes"] / max(result["tokens"], 1) if result.get("bytes") else 1.0,
            "curve": records,
        })
    return rows


def _params(run: Path) -> int:
    """Weights of a neural run; stored probabilities (n-grams) of a counting run."""
    from safetensors import safe_open

    weights = run / "model.safetensors"
    if not weights.exists() and (run / NGRAM_WEIGHTS).exists():
        with safe_open(str(run / NGRAM_WEIGHTS), "np") as handle:
            return sum(handle.get_slice(name).get_shape()[0] for name in handle.keys() if name.startswith("logp"))  # noqa: SIM118
    with safe_open(str(weights), "pt") as handle:
        return sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())  # noqa: SIM118 (safe_open is no dict)


def plot(rows: list[dict], out: Path) -> None:
    """Loss against training seconds and against tokens; language models in bits per byte (nats/token
    divided by ln 2 and by the train split's bytes per token), so tokenizers compare fairly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    for row in rows:
        scale = 1 / math.log(2) / row["bytes_per_token"] if row["objective"] != "masked_lm" else 1.0
        val = [r for r in row["curve"] if "val_loss" in r and "train_time" in r]
        label = f"{Path(row['run']).name} ({row['family']})"
        for ax, x in zip(axes, ("train_time", "tokens")):
            line, = ax.plot([r[x] for r in row["curve"] if "loss" in r],
                            [r["loss"] * scale for r in row["curve"] if "loss" in r], linewidth=0.8, alpha=0.5)
            ax.plot([r[x] for r in val], [r["val_loss"] * scale for r in val], "o-", color=line.get_color(),
                    label=label, markersize=3)
    for ax, xlabel in zip(axes, ("training time (s)", "tokens seen")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("loss (bits/byte; masked LM: nats/token)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("train (thin) and validation (dots: the sample read during training) loss; the table: the whole split")
    save_figure(fig, out)
