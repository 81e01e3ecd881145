"""Figures of embeddings: several latent spaces side by side, coloured by batch and by label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from perslib._core.validation import check_array, check_consistent_length
from perslib.plotting._base import categorical_colors

__all__ = ["plot_embeddings"]


def plot_embeddings(
    embeddings: Mapping[str, Any],
    colorings: Mapping[str, Any],
    *,
    max_points: int | None = 600,
    random_state: int = 0,
    panel_size: float = 2.6,
) -> Figure:
    """A grid of 2-D views of embeddings: one column per embedding, one row per colouring.

    Each embedding (n, d) is z-scored and projected on its first two principal components
    (d > 2), so every panel shows the directions of largest spread. Rows colour the same
    points by, say, batch and class label: an embedding free of batch effects shows the
    batches mixed in the first row and the classes apart in the second.

    Parameters
    ----------
    embeddings : mapping of str to array-like of shape (n, d), d >= 2
        Panel title -> embedding of the same n samples.
    colorings : mapping of str to array-like of shape (n,)
        Row name -> category of each sample (e.g. ``{"batch": b, "label": y}``).
    max_points : int or None, default=600
        Random subset drawn (the same for every panel); None draws all.
    random_state : int, default=0
    panel_size : float, default=2.6
        Side of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not embeddings or not colorings:
        raise ValueError("embeddings and colorings must each hold at least one entry")
    views = {}
    for name, E in embeddings.items():
        A = check_array(E, f"embeddings[{name!r}]", ndim=2)
        if A.shape[1] < 2:
            raise ValueError(f"embeddings[{name!r}] must have at least 2 columns, got {A.shape[1]}")
        sd = A.std(axis=0)
        A = (A - A.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        views[name] = PCA(2, random_state=random_state).fit_transform(A) if A.shape[1] > 2 else A
    cats = {k: np.asarray(v, dtype=object) for k, v in colorings.items()}
    check_consistent_length(**{f"embedding {k}": v for k, v in views.items()}, **cats)
    n = len(next(iter(views.values())))
    rng = np.random.default_rng(random_state)
    idx = np.arange(n) if max_points is None or n <= max_points else np.sort(rng.choice(n, max_points, replace=False))
    fig, axes = plt.subplots(
        len(cats),
        len(views),
        figsize=(panel_size * len(views) + 1.2, panel_size * len(cats)),
        layout="constrained",
        squeeze=False,
    )
    for r, (row, values) in enumerate(cats.items()):
        levels = list(pd.unique(pd.Series(values[idx])))
        try:
            levels = sorted(levels)
        except TypeError:
            pass
        colors = dict(zip(levels, categorical_colors(len(levels))))
        for c, (name, V) in enumerate(views.items()):
            ax = axes[r, c]
            for level in levels:
                m = idx[values[idx] == level]
                ax.scatter(V[m, 0], V[m, 1], s=5, alpha=0.7, color=colors[level], linewidths=0, label=str(level))
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize="small")
            if c == 0:
                ax.set_ylabel(f"coloured by {row}", fontsize="small")
        axes[r, -1].legend(title=row, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="x-small", markerscale=2)
    return fig
