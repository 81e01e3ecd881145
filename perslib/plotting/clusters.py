"""Figures of clusters: 2-D embeddings, image grids, soft cluster memberships."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perslib._core.validation import check_array, check_consistent_length, check_random_state
from perslib.plotting._base import (
    _labels_or_none,
    _new_axes,
    _panel_grid,
    categorical_colors,
)


# --------------------------------------------------------------------------- clusters
def plot_clusters_2d(
    X: Any,
    y: Any,
    groups: Any,
    n_cols: int = 5,
    max_points: int | None = 400,
    titles: Mapping[Any, str] | Sequence[str] | None = None,
    dims: tuple[int, int] = (0, 1),
    random_state: Any = 0,
    panel_size: float = 2.0,
    class_name: str = "class",
) -> Figure:
    """Small multiples: one panel per cluster, points coloured by class.

    For the spiral simulation of the ARMED paper (Nguyen et al., TPAMI 2023) this
    shows how each cluster's spiral differs (radius, slope, class balance) while the
    class boundary is shared in shape.

    Parameters
    ----------
    X : array-like of shape (N, d), d >= 2
        Features; the two columns in ``dims`` are drawn.
    y : array-like of shape (N,)
        Class labels, used for colour.
    groups : array-like of shape (N,)
        Cluster of each sample; one panel per distinct value (sorted).
    n_cols : int, default=5
        Panels per row.
    max_points : int or None, default=400
        At most this many randomly chosen points per panel (None: all).
    titles : mapping or sequence of str, optional
        Panel titles, by cluster value (mapping) or in sorted cluster order
        (sequence). Default ``"cluster <g>"``.
    dims : (int, int), default=(0, 1)
        Columns of X on the horizontal and vertical axes.
    random_state : int or Generator, default=0
        Seeds the per-panel subsets.
    panel_size : float, default=2.0
        Side of one square panel in inches.
    class_name : str, default="class"
        Word put before each class in the legend.

    Returns
    -------
    matplotlib.figure.Figure
        With one axes per cluster (empty grid cells are removed).
    """
    Xa = check_array(X, "X", ndim=2)
    ya = check_array(y, "y", ndim=1, dtype=None)
    g = check_array(groups, "groups", ndim=1, dtype=None)
    check_consistent_length(X=Xa, y=ya, groups=g)
    a, b = (int(d) for d in dims)
    if not (0 <= a < Xa.shape[1] and 0 <= b < Xa.shape[1]):
        raise ValueError(f"dims must index columns of X (d={Xa.shape[1]}), got {dims!r}")
    if not isinstance(n_cols, (int, np.integer)) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive int, got {n_cols!r}")
    clusters = np.sort(pd.unique(g))
    classes = np.sort(pd.unique(ya))
    colors = dict(zip(classes, categorical_colors(len(classes))))
    fig, axes = _panel_grid(len(clusters), n_cols, panel_size, extra_height=0.35)
    n_cols = axes.shape[1]
    rng = check_random_state(random_state)
    for k, cl in enumerate(clusters):
        ax = axes.flat[k]
        idx = np.flatnonzero(g == cl)
        if max_points is not None and idx.size > max_points:
            idx = np.sort(rng.choice(idx, size=int(max_points), replace=False))
        for c in classes:
            m = idx[ya[idx] == c]
            ax.scatter(Xa[m, a], Xa[m, b], s=4, alpha=0.7, color=colors[c], linewidths=0, label=f"{class_name} {c}")
        if titles is None:
            ax.set_title(f"cluster {cl}", fontsize="small")
        elif isinstance(titles, Mapping):
            ax.set_title(str(titles.get(cl, cl)), fontsize="small")
        else:
            ax.set_title(str(titles[k]), fontsize="small")
        ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize="x-small")
    for ax in axes.flat[len(clusters) :]:
        ax.remove()
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=len(names), markerscale=3)
    return fig


def plot_image_grid(
    images: Any,
    row_labels: Any,
    n_per_row: int = 8,
    title_fmt: str = "site {}",
    sample_labels: Any = None,
    cmap: str = "gray",
    shared_scale: bool = True,
    cell_size: float = 0.9,
) -> Figure:
    """A grid of images with one row per group (site, batch): the first images of each.

    With ``shared_scale=True`` (the default) every image uses the same grey scale, so
    differences in brightness and contrast between rows — batch effects — stay
    visible instead of being normalised away.

    Parameters
    ----------
    images : array-like of shape (N, H, W) or (N, 1, H, W)
        Single-channel images.
    row_labels : array-like of shape (N,)
        Group of each image; one row per distinct value (sorted).
    n_per_row : int, default=8
        Images shown per row (fewer if a group has fewer).
    title_fmt : str, default="site {}"
        Format of each row's label, filled with the group value.
    sample_labels : array-like of shape (N,), optional
        Per-image label (e.g. the class) written in the corner of each image.
    cmap : str, default="gray"
        Colour map.
    shared_scale : bool, default=True
        One intensity scale for the whole grid (else each image is scaled alone).
    cell_size : float, default=0.9
        Side of one image in inches.

    Returns
    -------
    matplotlib.figure.Figure
        With (number of groups) × ``n_per_row`` axes.
    """
    im = check_array(images, "images", ndim=(3, 4))
    if im.ndim == 4:
        if im.shape[1] != 1:
            raise ValueError(f"images must have a single channel (N, 1, H, W), got shape {im.shape}")
        im = im[:, 0]
    rows = check_array(row_labels, "row_labels", ndim=1, dtype=None)
    check_consistent_length(images=im, row_labels=rows)
    lab = _labels_or_none(sample_labels, im.shape[0], "sample_labels")
    if not isinstance(n_per_row, (int, np.integer)) or n_per_row < 1:
        raise ValueError(f"n_per_row must be a positive int, got {n_per_row!r}")
    groups = np.sort(pd.unique(rows))
    picks = [np.flatnonzero(rows == g)[:n_per_row] for g in groups]
    shown = np.concatenate(picks)
    vmin, vmax = (float(im[shown].min()), float(im[shown].max())) if shared_scale else (None, None)
    fig, axes = plt.subplots(
        len(groups),
        n_per_row,
        figsize=(cell_size * n_per_row + 0.9, cell_size * len(groups)),
        squeeze=False,
        layout="constrained",
    )
    for r, (g, idx) in enumerate(zip(groups, picks)):
        for c in range(n_per_row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c >= idx.size:
                continue
            ax.imshow(im[idx[c]], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if lab is not None:
                ax.text(
                    0.04,
                    0.96,
                    str(lab[idx[c]]),
                    transform=ax.transAxes,
                    ha="left",
                    va="top",
                    fontsize="x-small",
                    color="white",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "black", "alpha": 0.5, "lw": 0},
                )
        axes[r, 0].set_ylabel(title_fmt.format(g), rotation=0, ha="right", va="center", fontsize="small")
    return fig


def plot_soft_memberships(
    memberships: Any,
    row_groups: Any,
    columns: Sequence[Any] | None = None,
    row_order: Sequence[Any] | None = None,
    column_order: Sequence[Any] | None = None,
    ax: Axes | None = None,
    annotate: bool = True,
    xlabel: str = "seen cluster",
    ylabel: str = "held-out cluster",
    title: str | None = None,
) -> Figure:
    """Heat map of soft cluster memberships, averaged over the samples of each row group.

    Typical use: the ARMED z-predictor's probabilities over the K training clusters for
    samples of clusters it never saw; row ``r`` shows how the samples of held-out
    cluster ``r`` are spread, on average, over the seen clusters.

    Parameters
    ----------
    memberships : array-like of shape (n, K)
        Soft memberships (rows are probability vectors, e.g. ``design_matrix(..., z="zpredictor")``).
        NaN marks a column that does not apply to a sample (e.g. a cluster that was not
        among the training clusters of that sample's fold); such cells stay blank.
    row_groups : array-like of shape (n,)
        The group of each sample (one heat-map row per group).
    columns : sequence of length K, optional
        Names of the K columns (default ``0 .. K-1``).
    row_order, column_order : sequence, optional
        Order of rows (group labels) and columns (column names); default sorted / as given.
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    annotate : bool, default=True
        Write each cell's mean membership (two decimals) in it.
    xlabel, ylabel, title : str
        Axis labels and title.

    Returns
    -------
    matplotlib.figure.Figure
        Its first axes holds the heat map; the averaged table is attached to it as
        ``fig.axes[0].memberships_`` (a DataFrame, rows x columns).
    """
    Z = check_array(memberships, "memberships", ndim=2, allow_nan=True)
    groups = _labels_or_none(row_groups, Z.shape[0], "row_groups")
    if groups is None:
        raise ValueError("row_groups is required")
    names = list(columns) if columns is not None else list(range(Z.shape[1]))
    if len(names) != Z.shape[1]:
        raise ValueError(f"columns has {len(names)} names but memberships has {Z.shape[1]} columns")
    table = pd.DataFrame(Z, columns=names).groupby(pd.Series(groups, name=ylabel)).mean()
    if row_order is not None:
        table = table.loc[list(row_order)]
    if column_order is not None:
        table = table[list(column_order)]
    fig, ax = _new_axes(ax, figsize=(0.5 * table.shape[1] + 2.2, 0.4 * table.shape[0] + 1.4))
    top = float(np.nanmax(table.to_numpy())) if np.isfinite(table.to_numpy()).any() else 1.0
    sns.heatmap(
        table,
        ax=ax,
        cmap="viridis",
        vmin=0.0,
        vmax=max(top, 1e-12),
        annot=annotate,
        fmt=".2f",
        annot_kws={"fontsize": "x-small"},
        cbar_kws={"label": "mean membership"},
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.memberships_ = table
    return fig


__all__ = ["plot_clusters_2d", "plot_image_grid", "plot_soft_memberships"]
