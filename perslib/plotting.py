"""The house plotting style and the figures the notebooks show.

Conventions, shared by every function here:

* data go in as arrays (or a DataFrame where a table is the natural input), with an
  optional ``ax=None``: pass an ``Axes`` to draw into an existing figure, or leave it
  out and a new figure is made;
* every function returns the matplotlib :class:`~matplotlib.figure.Figure`; nothing
  here calls ``plt.show()`` or writes a file. :func:`save_figure` is the one place
  that writes, and it writes only where it is told;
* no backend is forced: notebooks get the inline backend, scripts and tests whatever
  matplotlib picks (Agg on a machine without a display).

Call :func:`set_style` once at the top of a notebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perslib.utils import check_array, check_consistent_length, check_random_state

__all__ = [
    "set_style",
    "categorical_colors",
    "save_figure",
    "plot_parameter_space",
    "plot_parameters_vs_covariate",
    "plot_clusters_2d",
    "plot_image_grid",
    "plot_group_scores",
    "plot_scatter",
    "plot_history",
]

#: Colour-blind-safe qualitative palette (seaborn's "colorblind", after Wong 2011).
PALETTE = "colorblind"
#: Colour for estimates drawn over data (pooled θ, fitted lines): near-black.
ESTIMATE_COLOR = "#222222"
#: Markers cycled over the entries of an ``estimates`` mapping.
_ESTIMATE_MARKERS = ("*", "X", "P", "D", "s", "^")


def set_style(context: str = "notebook", palette: str = PALETTE) -> None:
    """Apply the perslib house style (seaborn theme plus a few rc settings).

    Parameters
    ----------
    context : {"paper", "notebook", "talk", "poster"}, default="notebook"
        Seaborn scaling context for fonts and line widths.
    palette : str, default="colorblind"
        Seaborn qualitative palette used as the default colour cycle.

    Notes
    -----
    Sets a white background with ticks, removes the top and right spines, 100 dpi for
    inline display (``save_figure`` writes at its own dpi), a 6.4 × 4.2 inch default
    figure, frameless legends and ``viridis`` as the default colour map.
    """
    if context not in {"paper", "notebook", "talk", "poster"}:
        raise ValueError(f"context must be 'paper', 'notebook', 'talk' or 'poster', got {context!r}")
    rc = {
        "figure.dpi": 100,
        "savefig.dpi": 120,
        "figure.figsize": (6.4, 4.2),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "legend.frameon": False,
        "image.cmap": "viridis",
        "savefig.bbox": "tight",
    }
    sns.set_theme(context=context, style="ticks", palette=palette, rc=rc)
    # seaborn scales these with the context; pin the relation title > label > tick
    base = plt.rcParams["font.size"]
    plt.rcParams.update({"axes.titlesize": base * 1.05, "axes.labelsize": base, "legend.fontsize": base * 0.85,
                         "xtick.labelsize": base * 0.85, "ytick.labelsize": base * 0.85})


def categorical_colors(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinguishable colours: the colour-blind palette up to 10, then ``husl``."""
    if n <= 10:
        return sns.color_palette(PALETTE, max(n, 1))[:n]
    return sns.color_palette("husl", n)


def save_figure(
    fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str] = ("png",), dpi: int = 120
) -> list[Path]:
    """Write ``fig`` to ``out_dir/name.<fmt>`` for each format, creating ``out_dir``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to write.
    out_dir : str or Path
        Destination folder; created (with parents) when missing.
    name : str
        File stem without extension, e.g. ``"parameter_space"``.
    formats : sequence of str, default=("png",)
        Extensions understood by matplotlib (``"png"``, ``"pdf"``, ``"svg"``...).
    dpi : int, default=120
        Resolution of raster formats.

    Returns
    -------
    list of Path
        The written files, in the order of ``formats``.
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not name or Path(name).name != name:
        raise ValueError(f"name must be a plain file stem without folders, got {name!r}")
    if isinstance(formats, str):
        formats = (formats,)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        fmt = str(fmt).lstrip(".").lower()
        path = out / f"{name}.{fmt}"
        fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- helpers
def _new_axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _labels_or_none(labels: Any, n: int, name: str = "labels") -> np.ndarray | None:
    if labels is None:
        return None
    lab = check_array(labels, name, ndim=1, dtype=None)
    if lab.shape[0] != n:
        raise ValueError(f"{name} has {lab.shape[0]} entries but there are {n} samples")
    return lab


def _scatter_by_label(ax: Axes, x: np.ndarray, y: np.ndarray, labels: np.ndarray | None, label_name: str | None,
                      s: float = 10, alpha: float = 0.6, legend: bool = True) -> None:
    """Scatter x, y with one collection per label (so the legend names each level)."""
    if labels is None:
        ax.scatter(x, y, s=s, alpha=alpha, color=categorical_colors(1)[0], linewidths=0)
        return
    levels = pd.unique(labels)
    try:
        levels = np.sort(levels)
    except TypeError:  # unorderable mix: keep first-seen order
        pass
    colors = categorical_colors(len(levels))
    prefix = f"{label_name} " if label_name else ""
    for level, color in zip(levels, colors):
        mask = labels == level
        ax.scatter(x[mask], y[mask], s=s, alpha=alpha, color=color, linewidths=0, label=f"{prefix}{level}")
    if legend:
        ax.legend(markerscale=2.0, handletextpad=0.2, borderaxespad=0.2)


def _name(names: Sequence[str] | None, j: int, default: str) -> str:
    if names is None:
        return default
    return str(names[j])


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
            ax.scatter(e[:, a], e[:, b], marker=marker, s=size, color=ESTIMATE_COLOR, edgecolors="white",
                       linewidths=1.2, zorder=5, label=name)
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
    fig, axes = plt.subplots(K, p, figsize=(panel_size[0] * p, panel_size[1] * K + 0.4), sharey="col",
                             squeeze=False, layout="constrained")
    for k in range(K):
        for j in range(p):
            ax = axes[k, j]
            _scatter_by_label(ax, cov[idx, k], th[idx, j], None if lab is None else lab[idx], label_name,
                              s=4, alpha=0.8, legend=False)
            ax.set_xlabel(_name(covariate_name, k, f"$u_{{{k}}}$"))
            ax.set_ylabel(_name(param_names, j, f"$\\theta_{{{j}}}$"))
            ax.tick_params(labelsize="x-small")
    if lab is not None:
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncol=min(len(names), 8), markerscale=3)
    return fig


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
    n_cols = int(min(n_cols, len(clusters)))
    n_rows = int(np.ceil(len(clusters) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel_size * n_cols, panel_size * n_rows + 0.35),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
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
    for ax in axes.flat[len(clusters):]:
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
    fig, axes = plt.subplots(len(groups), n_per_row, figsize=(cell_size * n_per_row + 0.9, cell_size * len(groups)),
                             squeeze=False, layout="constrained")
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
                ax.text(0.04, 0.96, str(lab[idx[c]]), transform=ax.transAxes, ha="left", va="top",
                        fontsize="x-small", color="white",
                        bbox={"boxstyle": "round,pad=0.1", "fc": "black", "alpha": 0.5, "lw": 0})
        axes[r, 0].set_ylabel(title_fmt.format(g), rotation=0, ha="right", va="center", fontsize="small")
    return fig


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
        :func:`perslib.metrics.per_group_score`.
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
            ax.axhline(float(value), color=ESTIMATE_COLOR, ls=styles[k % 3], lw=1.2,
                       label=f"{name} = {float(value):.3g}")
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


def plot_history(history: pd.DataFrame, ax: Axes | None = None, columns: Sequence[str] | None = None,
                 title: str | None = None) -> Figure:
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
    cols = list(columns) if columns is not None else [
        c for c in history.columns if c != "epoch" and pd.api.types.is_numeric_dtype(history[c])]
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
