"""Figures of scores: per-group scores, predicted vs true, training histories, scaling, scores over folds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perslib._core.validation import check_array, check_consistent_length
from perslib.plotting._base import (
    ESTIMATE_COLOR,
    _labels_or_none,
    _new_axes,
    _scatter_by_label,
    categorical_colors,
)


# --------------------------------------------------------------------------- scores
def plot_group_scores(
    frame: pd.DataFrame,
    group_col: str,
    score_col: str,
    reference: float | Mapping[str, float] | None = None,
    ax: Axes | None = None,
    hue: str | None = None,
    sort: bool = False,
    score_label: str | None = None,
    group_label: str | None = None,
) -> Figure:
    """A dot chart of one score per group, with reference lines (e.g. the pooled score).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per group (per group and hue level), e.g. the output of
        :func:`perslib.evaluation.per_group_score`.
    group_col : str
        Column with the group labels (horizontal axis).
    score_col : str
        Column with the scores (vertical axis).
    reference : float or mapping of str to float, optional
        Horizontal reference line(s): a single value is labelled "overall"; a mapping
        gives each line its label (e.g. ``{"pooled test accuracy": 0.78}``). Each dot
        gets a stem from the first reference line, so the chart reads as deviations.
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    hue : str, optional
        Column naming the series (e.g. the model); each gets a colour and a slight
        horizontal offset.
    sort : bool, default=False
        Order groups by their (mean) score instead of by label.
    score_label, group_label : str, optional
        Axis labels (default: the column names).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    for col, arg in ((group_col, "group_col"), (score_col, "score_col"), (hue, "hue")):
        if col is not None and col not in frame.columns:
            raise ValueError(f"{arg}={col!r} is not a column of frame (columns: {list(frame.columns)})")
    scores = check_array(frame[score_col], f"frame[{score_col!r}]", ndim=1, allow_nan=True)
    data = frame.assign(_score=scores)
    order = data.groupby(group_col, sort=True)["_score"].mean()
    if sort:
        order = order.sort_values()
    groups = list(order.index)
    pos = {g: i for i, g in enumerate(groups)}
    fig, ax = _new_axes(ax, figsize=(max(4.0, 0.42 * len(groups) + 1.8), 3.6))
    series = [(None, data)] if hue is None else list(data.groupby(hue, sort=False))
    colors = categorical_colors(len(series))
    width = 0.5
    refs = {}
    if reference is not None:
        refs = {"overall": float(reference)} if np.isscalar(reference) else dict(reference)
    base = float(next(iter(refs.values()))) if refs else None
    for s, ((name, part), color) in enumerate(zip(series, colors)):
        shift = 0.0 if len(series) == 1 else -width / 2 + width * s / (len(series) - 1)
        xs = np.array([pos[g] for g in part[group_col]], dtype=float) + shift
        if base is not None:  # stems show each group's distance from the (first) reference
            ax.vlines(xs, base, part["_score"], color=color, alpha=0.4, lw=1.5)
        ax.scatter(xs, part["_score"], s=45, color=color, zorder=3, label=None if name is None else str(name))
    if refs:
        styles = ["--", ":", "-."]
        for k, (name, value) in enumerate(refs.items()):
            ax.axhline(
                float(value), color=ESTIMATE_COLOR, ls=styles[k % 3], lw=1.2, label=f"{name} = {float(value):.3g}"
            )
    finite = scores[np.isfinite(scores)]
    vals = list(finite) + list(refs.values())
    if vals:
        lo, hi = min(vals), max(vals)
        pad = 0.08 * (hi - lo) if hi > lo else 0.05
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([str(g) for g in groups])
    ax.set_xlim(-0.7, len(groups) - 0.3)
    ax.set_xlabel(group_label or group_col)
    ax.set_ylabel(score_label or score_col)
    if hue is not None or reference is not None:
        ax.legend(loc="best", fontsize="small")
    return fig


def plot_scatter(
    x: Any,
    y: Any,
    labels: Any = None,
    annotate: Sequence[Any] | None = None,
    fit_line: bool = True,
    xlabel: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
    label_name: str | None = None,
    title: str | None = None,
    identity: bool = False,
    show_r: bool = True,
) -> Figure:
    """Scatter of two per-group or per-sample quantities, with a least-squares line and r.

    Typical use: one point per cluster, e.g. per-cluster accuracy against the
    cluster's true random effect, or mean image brightness against a site's gain.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        The two quantities.
    labels : array-like of shape (n,), optional
        Colour groups.
    annotate : sequence of shape (n,), optional
        Text placed next to each point (e.g. the cluster id).
    fit_line : bool, default=True
        Draw the least-squares line.
    identity : bool, default=False
        Draw the line y = x (for "predicted vs observed" plots).
    show_r : bool, default=True
        Put Pearson's r in the legend.
    xlabel, ylabel, title : str, optional
        Axis labels and title.
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    label_name : str, optional
        Word put before each label in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    xa = check_array(x, "x", ndim=1)
    ya = check_array(y, "y", ndim=1)
    check_consistent_length(x=xa, y=ya)
    lab = _labels_or_none(labels, xa.size)
    fig, ax = _new_axes(ax, figsize=(4.4, 3.6))
    _scatter_by_label(ax, xa, ya, lab, label_name, s=40, alpha=0.9, legend=False)
    if annotate is not None:
        if len(annotate) != xa.size:
            raise ValueError(f"annotate has {len(annotate)} entries but x has {xa.size}")
        for xi, yi, t in zip(xa, ya, annotate):
            ax.annotate(str(t), (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize="x-small", color="0.3")
    if fit_line and xa.size >= 3 and np.ptp(xa) > 0:
        slope, intercept = np.polyfit(xa, ya, 1)
        grid = np.linspace(xa.min(), xa.max(), 50)
        ax.plot(grid, intercept + slope * grid, color=ESTIMATE_COLOR, lw=1.2, ls="--", label="least-squares line")
    if identity:
        lo, hi = float(min(xa.min(), ya.min())), float(max(xa.max(), ya.max()))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1.0, ls=":", label="y = x")
    if show_r and xa.size >= 3 and np.ptp(xa) > 0 and np.ptp(ya) > 0:
        r = float(np.corrcoef(xa, ya)[0, 1])
        ax.plot([], [], ls="none", label=f"Pearson r = {r:.2f}")  # text-only legend entry
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="best", fontsize="small", handlelength=1.5)
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or "")
    if title:
        ax.set_title(title)
    return fig


def plot_history(
    history: pd.DataFrame, ax: Axes | None = None, columns: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """Training curves from an estimator's ``history_`` table (one line per loss column).

    Parameters
    ----------
    history : pandas.DataFrame
        Must have an ``epoch`` column; every other numeric column (``train_loss``,
        ``val_loss``...) becomes a line unless ``columns`` is given.
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    columns : sequence of str, optional
        The columns to draw.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(history, pd.DataFrame) or "epoch" not in history.columns:
        raise ValueError("history must be a DataFrame with an 'epoch' column (an estimator's history_)")
    cols = (
        list(columns)
        if columns is not None
        else [c for c in history.columns if c != "epoch" and pd.api.types.is_numeric_dtype(history[c])]
    )
    missing = [c for c in cols if c not in history.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in history (columns: {list(history.columns)})")
    fig, ax = _new_axes(ax, figsize=(4.8, 3.2))
    for c, color in zip(cols, categorical_colors(len(cols))):
        ax.plot(history["epoch"], history[c], color=color, lw=1.6, label=c.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig


def plot_scaling(
    frame: pd.DataFrame,
    x: str = "n",
    y: str = "fit_s",
    hue: str | None = None,
    fit: bool = True,
    ax: Axes | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """Cost against size on log-log axes, one series per ``hue`` level, with fitted slopes.

    On log-log axes a power law ``y = c·x^b`` is a straight line of slope ``b``
    (:func:`perslib.evaluation.power_law_fit`); with ``fit=True`` each series with at
    least two distinct sizes gets its least-squares line and its slope in the legend.
    Dotted grey guides of slope 1 and 2 through the first point of the first series
    show what linear and quadratic growth would look like.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per measurement.
    x, y : str, default "n", "fit_s"
        Columns with the size and the cost (positive).
    hue : str, optional
        Column naming the series (e.g. "live, this run" and "benchmark").
    fit : bool, default=True
        Draw the fitted power law of each series.
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    xlabel, ylabel, title : str, optional
        Axis labels (default: the column names) and title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from perslib.evaluation import power_law_fit

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    for col, arg in ((x, "x"), (y, "y"), (hue, "hue")):
        if col is not None and col not in frame.columns:
            raise ValueError(f"{arg}={col!r} is not a column of frame (columns: {list(frame.columns)})")
    series = [(None, frame)] if hue is None else list(frame.groupby(hue, sort=False))
    fig, ax = _new_axes(ax, figsize=(5.4, 3.8))
    colors = categorical_colors(len(series))
    markers = ("o", "s", "^", "D", "v", "P")
    for k, ((name, part), color) in enumerate(zip(series, colors)):
        part = part.sort_values(x)
        xs = check_array(part[x], f"frame[{x!r}]", ndim=1)
        ys = check_array(part[y], f"frame[{y!r}]", ndim=1)
        if (xs <= 0).any() or (ys <= 0).any():
            raise ValueError(f"columns {x!r} and {y!r} must be positive on log-log axes")
        label = "" if name is None else str(name)
        if fit and np.unique(xs).size >= 2:
            slope, coef = power_law_fit(xs, ys)
            grid = np.geomspace(xs.min(), xs.max(), 20)
            ax.plot(grid, coef * grid**slope, color=color, lw=1.0, ls="--")
            label = f"{label} (slope {slope:.2f})".strip()
        ax.plot(xs, ys, marker=markers[k % len(markers)], ms=6, ls="none", color=color, label=label or None)
        if k == 0 and len(xs):
            span = np.geomspace(xs.min(), max(xs.max(), frame[x].max()), 20)
            for b, ls in ((1, ":"), (2, (0, (1, 4)))):
                ax.plot(span, ys[0] * (span / xs[0]) ** b, color="0.6", lw=1.0, ls=ls, label=f"slope {b} guide")
    ax.set_xscale("log")
    ax.set_yscale("log")
    y_all = frame[y].to_numpy(dtype=float)
    ax.set_ylim(y_all.min() / 1.6, y_all.max() * 1.6)  # the data decide the range; the guides are clipped
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- model comparison
def plot_fold_scores(
    scores: pd.DataFrame,
    metric: str,
    ax: Axes | None = None,
    models: Sequence[str] | None = None,
    reference: str | float | None = None,
    level: float = 0.95,
    score_label: str | None = None,
    title: str | None = None,
    test_train_ratio: float | None = None,
) -> Figure:
    """Cross-validated scores of several models: one row per model, folds and interval.

    Each model gets its per-fold scores as small dots and their mean with a confidence
    interval over folds as a large dot with a bar: the corrected resampled t interval
    (:func:`perslib.evaluation.corrected_t_interval`) when ``test_train_ratio`` is given,
    else the normal approximation (:func:`perslib.evaluation.mean_ci`, mean ± z·sd/√k).
    The fallback is kept for backward compatibility but treats the fold scores as
    independent and is too narrow for few, correlated folds: pass ``test_train_ratio``
    (e.g. ``ModelComparison.test_train_ratio`` or
    :func:`perslib.evaluation.split_ratio`) for cross-validation scores. Intervals are
    drawn as computed, not clipped to the metric's range.

    Parameters
    ----------
    scores : pandas.DataFrame
        Tidy per-fold scores with columns ``fold, model, metric, value`` (the output of
        :func:`perslib.evaluation.cross_validate_models`).
    metric : str
        The metric to draw (a value of the ``metric`` column).
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    models : sequence of str, optional
        Models to show, top to bottom (default: all, in the table's order).
    reference : str or float, optional
        Vertical dotted line: a model name (its mean score) or a number.
    level : float, default=0.95
        Coverage of the interval.
    score_label, title : str, optional
        Horizontal axis label (default: the metric) and title.
    test_train_ratio : float, optional
        :math:`n_\\text{test}/n_\\text{train}` of the folds
        (:func:`perslib.evaluation.split_ratio`); selects the corrected t interval.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from perslib.evaluation import corrected_t_interval, mean_ci

    need = {"fold", "model", "metric", "value"}
    if not isinstance(scores, pd.DataFrame) or not need <= set(scores.columns):
        raise ValueError(f"scores must be a DataFrame with columns {sorted(need)}")
    data = scores[scores["metric"] == metric]
    if data.empty:
        raise ValueError(f"metric {metric!r} is not in scores (metrics: {sorted(scores['metric'].unique())})")
    names = list(models) if models is not None else list(pd.unique(data["model"]))
    missing = [m for m in names if m not in set(data["model"])]
    if missing:
        raise ValueError(f"models {missing} have no {metric!r} scores")
    fig, ax = _new_axes(ax, figsize=(5.6, 0.45 * len(names) + 1.2))
    colors = categorical_colors(len(names))
    means = {}
    for i, (name, color) in enumerate(zip(names, colors)):
        vals = data.loc[data["model"] == name, "value"].to_numpy(float)
        row = len(names) - 1 - i  # first model on top
        jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(1)
        ax.scatter(vals, row + jitter, s=14, color=color, alpha=0.45, linewidths=0)
        if len(vals) >= 2:
            if test_train_ratio is None:
                mean, low, high = mean_ci(vals, level)
            else:
                mean, low, high = corrected_t_interval(vals, test_train_ratio, level)
            ax.plot([low, high], [row, row], color=color, lw=2.2, solid_capstyle="butt")
        else:
            mean = float(vals.mean())
        ax.scatter([mean], [row], s=55, color=color, zorder=3, edgecolors="white", linewidths=0.8)
        means[name] = mean
    if reference is not None:
        if isinstance(reference, str):
            if reference not in means:
                raise ValueError(f"reference {reference!r} is not one of the models {names}")
            value, label = means[reference], f"mean of {reference}"
        else:
            value, label = float(reference), f"{float(reference):.3g}"
        ax.axvline(value, color=ESTIMATE_COLOR, ls=":", lw=1.1, label=label)
        ax.legend(loc="best", fontsize="small")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names[::-1])
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel(score_label or f"{metric} (folds; mean and {level:.0%} interval)")
    if title:
        ax.set_title(title)
    return fig


__all__ = ["plot_group_scores", "plot_scatter", "plot_history", "plot_scaling", "plot_fold_scores"]
