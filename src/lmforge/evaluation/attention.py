"""What attention shows: heat maps of target tokens over source tokens (one map, or a grid of every head of
a layer) and word alignments read from the weights (each target word aligned to the source word it attends
to most, in Pharaoh `i-j` notation as fast_align and Moses write it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmforge.evaluation.plots import save_figure


def word_starts(pieces: list[str]) -> list[int]:
    """The word each token belongs to, from the tokens' own text: a token that starts with whitespace (or
    the first one) starts a new word; a special token (empty text) is a word of its own."""
    words, current = [], -1
    for piece in pieces:
        if current < 0 or not piece or piece[:1].isspace() or piece.startswith("\u2581"):
            current += 1
        words.append(current)
    return words


def word_alignment(weights: np.ndarray, src_words: list[int], tgt_words: list[int]) -> list[tuple[int, int]]:
    """(source word, target word) pairs: each target word's tokens' attention (T, S) summed per source word, the
    most attended source word taken."""
    n_src, n_tgt = max(src_words) + 1, max(tgt_words) + 1
    mass = np.zeros((n_tgt, n_src))
    for t, tw in enumerate(tgt_words):
        for s, sw in enumerate(src_words):
            mass[tw, sw] += weights[t, s]
    return [(int(mass[j].argmax()), j) for j in range(n_tgt)]


def pharaoh(pairs: list[tuple[int, int]]) -> str:
    return " ".join(f"{i}-{j}" for i, j in sorted(pairs))


def plot_attention(weights: np.ndarray, src_labels: list[str], tgt_labels: list[str], path: Path, title: str,
                   head_titles: list[str] | None = None) -> None:
    """A heat map (T, S), or a grid of maps (H, T, S) titled by `head_titles`, target tokens down the side and
    source tokens along the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = weights[None] if weights.ndim == 2 else weights
    cols = min(len(maps), 4)
    rows = (len(maps) + cols - 1) // cols
    T, S = maps.shape[1:]
    size = (max(4.0, 0.35 * S + 2) * cols, max(3.0, 0.3 * T + 1.5) * rows)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(maps):
            ax.axis("off")
            continue
        ax.imshow(maps[k], cmap="viridis", aspect="auto", vmin=0.0, vmax=max(float(maps[k].max()), 1e-6))
        ax.set_xticks(range(S), src_labels, rotation=90, fontsize=8)
        ax.set_yticks(range(T), tgt_labels, fontsize=8)
        ax.set_title(head_titles[k] if head_titles else title, fontsize=9)
    if head_titles:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
