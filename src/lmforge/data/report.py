"""stats.json and the document-length histogram of a prepare run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmforge.artifacts import read_json


def _add(total: dict, part: dict) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


def summarize(part_files: list[Path], final: dict, dedup: dict, seconds: float) -> dict:
    """Sum the per-input counts of phase 1 and add the dedup and output counts of phase 2."""
    stats = {"inputs": 0, "files": 0, "docs_in": 0, "bytes_in": 0, "rejected_docs": {}, "rejected_bytes": {},
             "bad_records": {}, "skipped_files": {}, "skipped_file_names": {}, "docs_with_invalid_utf8": 0,
             "docs_with_markup": 0,
             "languages": {}, "languages_kept": {},
             "pii_masked": {}, "phase1_cpu_seconds": 0.0}
    for path in part_files:
        part = read_json(path, "part stats")
        stats["inputs"] += 1
        for key in ("files", "docs_in", "bytes_in", "docs_with_invalid_utf8", "docs_with_markup"):
            stats[key] += part.get(key, 0)  # (parts written before docs_with_markup lack it)
        for key in ("rejected_docs", "rejected_bytes", "bad_records", "skipped_files", "languages", "pii_masked",
                    "languages_kept"):
            _add(stats[key], part.get(key, {}))
        for reason, names in part.get("skipped_file_names", {}).items():
            stats["skipped_file_names"].setdefault(reason, []).extend(names)
        stats["phase1_cpu_seconds"] += part["seconds"]
    for reason in ("exact_duplicate", "near_duplicate"):
        removed = dedup["exact_removed"] if reason == "exact_duplicate" else dedup["near_removed"]
        if removed:
            stats["rejected_docs"][reason] = removed
            stats["rejected_bytes"][reason] = final["dup_bytes"].get(reason, 0)
    lengths = final["lengths"]
    stats.update({
        "docs_out": final["docs_out"], "bytes_out": final["bytes_out"], "dedup": dedup,
        "words_per_doc": {"mean": float(lengths.mean()) if len(lengths) else 0.0,
                          "median": float(np.median(lengths)) if len(lengths) else 0.0},
        "seconds": round(seconds, 3), "mb_per_s": round(stats["bytes_in"] / 1e6 / max(seconds, 1e-9), 3),
    })
    stats["languages"] = dict(sorted(stats["languages"].items(), key=lambda kv: -kv[1]))
    return stats


def plot_lengths(lengths: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if len(lengths):
        bins = np.logspace(0, np.log10(max(lengths.max(), 10)), 40)
        ax.hist(np.maximum(lengths, 1), bins=bins)
        ax.set_xscale("log")
    ax.set_xlabel("words per document")
    ax.set_ylabel("documents")
    ax.set_title(f"{len(lengths):,} documents")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
