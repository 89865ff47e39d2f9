"""The one plotting helper: save a matplotlib figure as a PNG atomically (temp file, then rename)."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.tight_layout()
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
