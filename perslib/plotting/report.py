"""Figures of the data report (notebook 08): cluster sizes, caterpillar plots, importances,
per-sample coefficients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perslib.plotting._base import ESTIMATE_COLOR, _new_axes, categorical_colors

__all__ = ["plot_caterpillar", "plot_cluster_sizes", "plot_coefficient_spread", "plot_importance"]


def plot_cluster_sizes(sizes: Any, ax: Axes | None = None, label: str = "cluster", title: str | None = None) -> Figure:
    """Histogram of the number of rows per cluster.

    Parameters
    ----------
    sizes : array-like of shape (K,)
        Rows of each cluster.
    ax : matplotlib Axes, optional
    label : str, default="cluster"
        What a cluster is called (the groups column), for the axis label.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    s = np.asarray(sizes, dtype=float)
    if s.ndim != 1 or s.size == 0 or not np.isfinite(s).all():
        raise ValueError("sizes must be a non-empty 1-D array of finite counts")
    fig, ax = _new_axes(ax, figsize=(5.0, 3.4))
    bins = min(30, max(5, int(np.sqrt(s.size)) + 1))
    ax.hist(s, bins=bins, color=categorical_colors(1)[0], edgecolor="white")
    ax.axvline(np.median(s), color=ESTIMATE_COLOR, ls=":", lw=1.1, label=f"median {np.median(s):g}")
    ax.set(xlabel=f"rows per {label}", ylabel=f"number of {label}s")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_caterpillar(
    table: pd.DataFrame,
    *,
    label: str = "cluster",
    mean: str = "mean",
    low: str = "low",
    high: str = "high",
    reference: Mapping[str, Mapping[Any, float]] | None = None,
    center: float | None = 0.0,
    ax: Axes | None = None,
    ylabel: str = "effect",
    title: str | None = None,
    max_ticks: int = 40,
    interval_label: str = "estimate and 95% interval",
) -> Figure:
    """A caterpillar plot: one estimate with its interval per cluster, sorted by the estimate.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per cluster with columns ``label``, ``mean``, ``low`` and ``high``.
    label, mean, low, high : str
        Column names.
    reference : mapping of str to mapping of cluster to float, optional
        Other estimates drawn as small markers at the same clusters, e.g.
        ``{"linear mixed model": blups}``.
    center : float or None, default=0.0
        A dotted horizontal line (0 for random effects; the overall mean for cluster means).
    ax : matplotlib Axes, optional
    ylabel, title : str
    max_ticks : int, default=40
        Cluster names are written under the axis only up to this many clusters.
    interval_label : str, default="estimate and 95% interval"
        Legend entry of the estimates and their intervals (say which level they have).

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = [label, mean, low, high]
    if not isinstance(table, pd.DataFrame) or any(c not in table.columns for c in need):
        raise ValueError(f"table must be a DataFrame with columns {need}")
    if table.empty:
        raise ValueError("table has no rows")
    t = table.sort_values(mean, kind="stable").reset_index(drop=True)
    x = np.arange(len(t))
    width = min(12.0, max(6.0, 0.09 * len(t) + 3))
    fig, ax = _new_axes(ax, figsize=(width, 3.8))
    color = categorical_colors(1)[0]
    ax.vlines(x, t[low], t[high], color=color, lw=1.2 if len(t) < 80 else 0.8, alpha=0.8)
    ax.scatter(x, t[mean], s=16 if len(t) < 80 else 8, color=color, zorder=3, label=interval_label)
    markers = ("D", "s", "^", "v")
    for k, (name, values) in enumerate((reference or {}).items()):
        v = pd.Series(values).reindex(t[label]).to_numpy(dtype=float)
        ax.scatter(x, v, s=12, marker=markers[k % len(markers)], color=ESTIMATE_COLOR, alpha=0.6, zorder=4, label=name)
    if center is not None:
        ax.axhline(center, color=ESTIMATE_COLOR, ls=":", lw=1.0)
    if len(t) <= max_ticks:
        ax.set_xticks(x)
        ax.set_xticklabels([str(v) for v in t[label]], rotation=90, fontsize="x-small")
    else:
        ax.set_xticks([])
    ax.set(xlabel=f"{label} (sorted by the estimate)", ylabel=ylabel, xlim=(-1, len(t)))
    ax.legend(fontsize="small", loc="upper left")
    if title:
        ax.set_title(title)
    return fig


def plot_importance(
    importance: pd.DataFrame,
    columns: Sequence[str] | None = None,
    ax: Axes | None = None,
    xlabel: str = "share of the model's total importance",
    title: str | None = None,
    max_features: int = 25,
) -> Figure:
    """Feature importances of several models side by side (horizontal bars).

    Parameters
    ----------
    importance : pandas.DataFrame
        Features (rows) x models (columns).
    columns : sequence of str, optional
        The models to draw (default: every column).
    ax : matplotlib Axes, optional
    xlabel, title : str
    max_features : int, default=25
        Only the features with the largest importance (over the models) are drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(importance, pd.DataFrame) or importance.empty:
        raise ValueError("importance must be a non-empty DataFrame (features x models)")
    cols = list(columns) if columns is not None else list(importance.columns)
    missing = [c for c in cols if c not in importance.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in importance")
    data = importance[cols]
    data = data.loc[data.max(axis=1).sort_values(ascending=False).index[:max_features]]
    fig, ax = _new_axes(ax, figsize=(7.0, 0.32 * len(data) * max(1, len(cols) / 2) + 1.4))
    y = np.arange(len(data))
    height = 0.8 / len(cols)
    for k, (col, color) in enumerate(zip(cols, categorical_colors(len(cols)))):
        ax.barh(y + (k - (len(cols) - 1) / 2) * height, data[col], height=height, color=color, label=col)
    ax.set_yticks(y)
    ax.set_yticklabels([str(i) for i in data.index])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    return fig


def plot_coefficient_spread(
    coefficients: pd.DataFrame,
    population: Mapping[str, float] | pd.Series | None = None,
    ax: Axes | None = None,
    xlabel: str = "coefficient × s.d. of the feature",
    title: str | None = None,
    max_rows: int = 5000,
    random_state: int = 0,
) -> Figure:
    """The distribution of per-sample coefficients, one violin per coefficient.

    Parameters
    ----------
    coefficients : pandas.DataFrame of shape (n, d)
        One row per sample (e.g. personalized regression's ``coef_``, scaled by each
        feature's s.d. to be comparable).
    population : mapping or Series, optional
        One value per column (the population model), drawn as a black diamond.
    ax : matplotlib Axes, optional
    xlabel, title : str
    max_rows : int, default=5000
        Violins are drawn from a seeded subsample of at most this many rows.
    random_state : int, default=0

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(coefficients, pd.DataFrame) or coefficients.empty:
        raise ValueError("coefficients must be a non-empty DataFrame (samples x coefficients)")
    data = coefficients
    if len(data) > max_rows:
        data = data.sample(max_rows, random_state=random_state)
    long = data.melt(var_name="coefficient", value_name="value")
    fig, ax = _new_axes(ax, figsize=(7.0, 0.42 * data.shape[1] + 1.4))
    sns.violinplot(
        long, x="value", y="coefficient", ax=ax, color=categorical_colors(1)[0], inner="quartile", cut=0, linewidth=0.8
    )
    if population is not None:
        pop = pd.Series(population).reindex(list(data.columns)).to_numpy(dtype=float)
        ax.scatter(pop, np.arange(len(pop)), marker="D", s=28, color=ESTIMATE_COLOR, zorder=5, label="population model")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.axvline(0, color="0.6", lw=0.8, zorder=0)
    ax.set(xlabel=xlabel, ylabel="")
    if title:
        ax.set_title(title)
    return fig
