"""Figures of per-sample parameters: parameter space, against a covariate, dictionaries, sweeps, relaxation snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perslib._core.validation import check_array, check_consistent_length, check_random_state
from perslib.plotting._base import (
    _ESTIMATE_MARKERS,
    ESTIMATE_COLOR,
    _labels_or_none,
    _name,
    _new_axes,
    _panel_grid,
    _scatter_by_label,
    categorical_colors,
)


# --------------------------------------------------------------------------- parameters
def plot_parameter_space(
    theta: Any,
    labels: Any = None,
    dims: tuple[int, int] = (0, 1),
    estimates: Mapping[str, Any] | None = None,
    ax: Axes | None = None,
    param_names: Sequence[str] | None = None,
    label_name: str | None = "process",
    title: str | None = None,
) -> Figure:
    """Per-sample parameters as points in a 2-D slice of parameter space.

    The view of Figure 1 in Lengerich et al. (NeurIPS 2019): every sample's true
    coefficient vector θᵢ is one point; samples from the same generating process form
    a cloud. Estimates can be drawn on top: a single pooled θ̂ as one large marker, a
    few per-group θ̂ (e.g. one per process) as several, or per-sample θ̂ as a second
    point cloud.

    Parameters
    ----------
    theta : array-like of shape (n, p)
        True per-sample parameters, p >= 2.
    labels : array-like of shape (n,), optional
        Group of each sample (e.g. the generating process), used for colour.
    dims : (int, int), default=(0, 1)
        The two coordinates of θ to show.
    estimates : mapping of str to array-like of shape (p,) or (m, p), optional
        Named estimates drawn over the points, in the same coordinates as ``theta``.
        A ``(p,)`` vector is drawn as one large marker; an ``(m, p)`` array as m
        markers (large when m <= 20, small grey points otherwise).
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    param_names : sequence of str, optional
        Names of the p coordinates (default ``θ_j``).
    label_name : str, optional
        Word put before each label in the legend ("process 0", ...).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    th = check_array(theta, "theta", ndim=2)
    n, p = th.shape
    a, b = (int(d) for d in dims)
    if not (0 <= a < p and 0 <= b < p) or a == b:
        raise ValueError(f"dims must be two different coordinates of theta (p={p}), got {dims!r}")
    lab = _labels_or_none(labels, n)
    fig, ax = _new_axes(ax, figsize=(5.6, 4.6))
    _scatter_by_label(ax, th[:, a], th[:, b], lab, label_name, s=9, alpha=0.55, legend=False)
    for k, (name, est) in enumerate((estimates or {}).items()):
        e = check_array(est, f"estimates[{name!r}]", ndim=(1, 2))
        e = e[None, :] if e.ndim == 1 else e
        if e.shape[1] != p:
            raise ValueError(f"estimates[{name!r}] has {e.shape[1]} coordinates but theta has p={p}")
        marker = _ESTIMATE_MARKERS[k % len(_ESTIMATE_MARKERS)]
        if e.shape[0] <= 20:
            size = 320 if marker == "*" else 110
            ax.scatter(
                e[:, a],
                e[:, b],
                marker=marker,
                s=size,
                color=ESTIMATE_COLOR,
                edgecolors="white",
                linewidths=1.2,
                zorder=5,
                label=name,
            )
        else:
            ax.scatter(e[:, a], e[:, b], marker=".", s=6, color="0.35", alpha=0.5, zorder=4, label=name)
    ax.set_xlabel(_name(param_names, a, f"$\\theta_{{{a}}}$"))
    ax.set_ylabel(_name(param_names, b, f"$\\theta_{{{b}}}$"))
    if title:
        ax.set_title(title)
    if lab is not None or estimates:
        ax.legend(markerscale=1.0, handletextpad=0.3, loc="best")
        for h in ax.get_legend().legend_handles:  # make the small data dots readable
            if hasattr(h, "set_sizes") and h.get_sizes().size and h.get_sizes()[0] < 20:
                h.set_sizes([40])
    return fig


def plot_parameters_vs_covariate(
    theta: Any,
    covariate: Any,
    labels: Any = None,
    param_names: Sequence[str] | None = None,
    covariate_name: str | Sequence[str] | None = None,
    label_name: str | None = "process",
    max_points: int | None = 800,
    random_state: Any = 0,
    panel_size: tuple[float, float] = (2.3, 2.0),
) -> Figure:
    """Each coordinate of θ against one or several covariates, one panel per pair.

    Shows *how* the covariates drive the parameters: a flat cloud means the covariate
    carries no information about that coefficient; steps or curves show
    personalization that a covariate can explain.

    Parameters
    ----------
    theta : array-like of shape (n, p)
        Per-sample parameters.
    covariate : array-like of shape (n,) or (n, K), or a DataFrame
        One covariate (a single row of p panels) or K covariates (a K × p grid, one
        row per covariate). DataFrame column names become the covariate names.
    labels : array-like of shape (n,), optional
        Group of each sample, used for colour (e.g. the generating process).
    param_names : sequence of str, optional
        Names of the p coefficients (default ``θ_j``).
    covariate_name : str or sequence of str, optional
        Name(s) of the covariate(s) for the x-axis labels.
    label_name : str, optional
        Word put before each label in the legend.
    max_points : int or None, default=800
        Plot a random subset of at most this many samples (None: all).
    random_state : int or Generator, default=0
        Seeds the subset.
    panel_size : (float, float), default=(2.3, 2.0)
        Width and height of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        With K × p axes.
    """
    th = check_array(theta, "theta", ndim=(1, 2))
    th = th[:, None] if th.ndim == 1 else th
    if isinstance(covariate, pd.DataFrame) and covariate_name is None:
        covariate_name = [str(c) for c in covariate.columns]
    elif isinstance(covariate, pd.Series) and covariate_name is None and covariate.name is not None:
        covariate_name = str(covariate.name)
    cov = check_array(covariate, "covariate", ndim=(1, 2))
    cov = cov[:, None] if cov.ndim == 1 else cov
    check_consistent_length(theta=th, covariate=cov)
    n, p = th.shape
    K = cov.shape[1]
    lab = _labels_or_none(labels, n)
    if isinstance(covariate_name, str):
        covariate_name = [covariate_name]
    if covariate_name is not None and len(covariate_name) != K:
        raise ValueError(f"covariate_name has {len(covariate_name)} names but covariate has {K} columns")
    idx = np.arange(n)
    if max_points is not None and n > max_points:
        idx = np.sort(check_random_state(random_state).choice(n, size=int(max_points), replace=False))
    fig, axes = plt.subplots(
        K, p, figsize=(panel_size[0] * p, panel_size[1] * K + 0.4), sharey="col", squeeze=False, layout="constrained"
    )
    for k in range(K):
        for j in range(p):
            ax = axes[k, j]
            _scatter_by_label(
                ax, cov[idx, k], th[idx, j], None if lab is None else lab[idx], label_name, s=4, alpha=0.8, legend=False
            )
            ax.set_xlabel(_name(covariate_name, k, f"$u_{{{k}}}$"))
            ax.set_ylabel(_name(param_names, j, f"$\\theta_{{{j}}}$"))
            ax.tick_params(labelsize="x-small")
    if lab is not None:
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncol=min(len(names), 8), markerscale=3)
    return fig


# --------------------------------------------------------------------------- low-rank dictionaries
def plot_dictionary(
    dictionary: Any,
    param_names: Sequence[str] | None = None,
    atom_names: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool = True,
    cmap: str = "RdBu_r",
) -> Figure:
    """Heatmap of dictionary atoms: one row per atom, one column per coefficient.

    In low-rank personalized regression every model is θᵢ = θ_pop + Qᵀzᵢ, so the rows
    of the dictionary ``Q`` (the *atoms*) are the directions in coefficient space along
    which the models may move away from the population model. The colour scale is
    symmetric around 0 (red positive, blue negative), so the sign pattern of each atom
    reads at a glance.

    Parameters
    ----------
    dictionary : array-like of shape (q, p)
        The atoms, e.g. ``PersonalizedRegressor.dictionary_``.
    param_names : sequence of str, optional
        Names of the p coefficients (default ``θ_j``).
    atom_names : sequence of str, optional
        Names of the q atoms (default ``atom 1`` ... ``atom q``).
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    title : str, optional
        Axes title.
    annotate : bool, default=True
        Write each entry (2 decimals) into its cell.
    cmap : str, default="RdBu_r"
        A diverging colour map.

    Returns
    -------
    matplotlib.figure.Figure
    """
    D = check_array(dictionary, "dictionary", ndim=2)
    q, p = D.shape
    for names, size, arg in ((param_names, p, "param_names"), (atom_names, q, "atom_names")):
        if names is not None and len(names) != size:
            raise ValueError(f"{arg} has {len(names)} names but dictionary has {size}")
    fig, ax = _new_axes(ax, figsize=(0.75 * p + 2.2, 0.5 * q + 1.2))
    vmax = float(np.abs(D).max()) or 1.0
    image = ax.imshow(D, cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(p))
    ax.set_xticklabels([_name(param_names, j, f"$\\theta_{{{j}}}$") for j in range(p)])
    ax.set_yticks(range(q))
    ax.set_yticklabels([_name(atom_names, k, f"atom {k + 1}") for k in range(q)])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if annotate:
        for k in range(q):
            for j in range(p):
                ax.text(
                    j,
                    k,
                    f"{D[k, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize="x-small",
                    color="white" if abs(D[k, j]) > 0.6 * vmax else "0.15",
                )
    fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
    if title:
        ax.set_title(title)
    return fig


def plot_sweep(
    x: Any,
    series: Mapping[str, Any],
    references: Mapping[str, float] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    logx: bool = False,
    logy: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """One or more curves over a swept setting (a rank, a size), with reference lines.

    Parameters
    ----------
    x : array-like of shape (m,)
        The swept values (e.g. the ranks q).
    series : mapping of str to array-like of shape (m,)
        Named curves drawn as lines with markers, in the mapping's order; NaN entries
        leave a gap.
    references : mapping of str to float, optional
        Horizontal reference lines (e.g. the population model's error), each labelled
        with its name and value.
    xlabel, ylabel, title : str, optional
        Axis labels and title.
    logx, logy : bool, default=False
        Logarithmic axes.
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    xa = check_array(x, "x", ndim=1)
    if not series:
        raise ValueError("series must name at least one curve")
    fig, ax = _new_axes(ax, figsize=(4.8, 3.4))
    refs = dict(references or {})
    colors = categorical_colors(len(series) + len(refs))
    markers = ("o", "s", "^", "D", "v", "P")
    for k, (name, values) in enumerate(series.items()):
        ya = check_array(values, f"series[{name!r}]", ndim=1, allow_nan=True)
        if ya.shape[0] != xa.shape[0]:
            raise ValueError(f"series[{name!r}] has {ya.shape[0]} values but x has {xa.shape[0]}")
        ax.plot(xa, ya, marker=markers[k % len(markers)], ms=5, lw=1.6, color=colors[k], label=name)
    styles = ["--", ":", "-."]
    for k, (name, value) in enumerate(refs.items()):
        ax.axhline(
            float(value), color=colors[len(series) + k], ls=styles[k % 3], lw=1.3, label=f"{name} ({float(value):.3g})"
        )
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or "")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def plot_snapshots(
    snapshots: Mapping[str, Any],
    labels: Any = None,
    dims: tuple[int, int] = (0, 1),
    param_names: Sequence[str] | None = None,
    label_name: str | None = "process",
    n_cols: int = 4,
    panel_size: float = 2.8,
) -> Figure:
    """Small multiples of a 2-D slice of parameter space, one panel per snapshot.

    Meant for watching personalized models relax during training: pass the per-sample
    parameters at a few epochs (``PersonalizedRegressor.snapshots_``) and the truth as
    the last entry. All panels share their axes, so movement between panels is real.

    Parameters
    ----------
    snapshots : mapping of str to array-like of shape (n, p)
        Panel title -> per-sample parameters; every entry has the same n rows.
    labels : array-like of shape (n,), optional
        Group of each sample (e.g. the true process), used for colour.
    dims : (int, int), default=(0, 1)
        The two coordinates shown.
    param_names : sequence of str, optional
        Names of the p coordinates.
    label_name : str, optional
        Word put before each label in the legend.
    n_cols : int, default=4
        Panels per row.
    panel_size : float, default=2.8
        Side of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        With one axes per snapshot (empty grid cells are removed).
    """
    if not snapshots:
        raise ValueError("snapshots must hold at least one panel")
    if not isinstance(n_cols, (int, np.integer)) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive int, got {n_cols!r}")
    arrays = {str(k): check_array(v, f"snapshots[{k!r}]", ndim=2) for k, v in snapshots.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"all snapshots must have the same shape, got {sorted(shapes)}")
    fig, axes = _panel_grid(len(arrays), n_cols, panel_size, extra_height=0.4)
    n_cols = axes.shape[1]
    for k, (name, th) in enumerate(arrays.items()):
        ax = axes.flat[k]
        plot_parameter_space(th, labels, dims=dims, ax=ax, param_names=param_names, label_name=label_name, title=name)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        if k % n_cols:
            ax.set_ylabel("")
        if k < len(arrays) - n_cols:
            ax.set_xlabel("")
    for ax in axes.flat[len(arrays) :]:
        ax.remove()
    handles, names = axes.flat[0].get_legend_handles_labels()
    if names:
        fig.legend(handles, names, loc="outside upper center", ncol=len(names), markerscale=2.5)
    return fig


__all__ = ["plot_parameter_space", "plot_parameters_vs_covariate", "plot_dictionary", "plot_sweep", "plot_snapshots"]
