"""A 2-D map of word vectors: PCA (NumPy SVD) or t-SNE (scikit-learn), words written at their points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmforge.embeddings.evaluate import Lookup
from lmforge.embeddings.vectors import WordVectors
from lmforge.errors import InputError
from lmforge.evaluation.plots import save_figure

DEFAULT_WORDS = 150


def project(points: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    centred = points - points.mean(axis=0)
    if method == "pca":
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise InputError("--method tsne needs scikit-learn: pip install scikit-learn (or use --method pca).") from None
    perplexity = max(2.0, min(30.0, (len(points) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(centred)


def plot_vectors(vectors: WordVectors, words: list[str] | None, method: str, out: Path) -> tuple[int, list[str]]:
    """Returns (words shown, words not in the vocabulary)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lookup = Lookup(vectors)
    words = words if words is not None else lookup.words[:DEFAULT_WORDS]
    rows = [(w, lookup.get(w)) for w in words]
    missing = [w for w, r in rows if r is None]
    found = [(w, r) for w, r in rows if r is not None]
    if len(found) < 3:
        raise InputError(f"only {len(found)} of the words are in the vocabulary; a map needs at least 3.")
    xy = project(lookup.unit[[r for _, r in found]], method)
    fig, ax = plt.subplots(figsize=(10, 8), dpi=100)
    ax.scatter(xy[:, 0], xy[:, 1], s=8, alpha=0.6)
    for (word, _), (x, y) in zip(found, xy):
        ax.annotate(word, (x, y), fontsize=8, alpha=0.85)
    ax.set_title(f"{len(found)} words, {method.upper()} of {vectors.dim}-d vectors")
    save_figure(fig, out)
    return len(found), missing
