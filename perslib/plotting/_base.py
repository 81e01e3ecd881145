"""House style, figure saving and the helpers the figure modules share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perslib._core.validation import check_array

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
    plt.rcParams.update(
        {
            "axes.titlesize": base * 1.05,
            "axes.labelsize": base,
            "legend.fontsize": base * 0.85,
            "xtick.labelsize": base * 0.85,
            "ytick.labelsize": base * 0.85,
        }
    )


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


def _panel_grid(n_panels: int, n_cols: int, panel_size: float, extra_height: float = 0.4):
    """A figure of ``n_panels`` square panels in rows of at most ``n_cols``, shared axes.

    Returns ``(fig, axes)`` with ``axes`` of shape (rows, cols); what happens to panels
    beyond ``n_panels`` is the caller's choice.
    """
    n_cols = int(min(n_cols, n_panels))
    n_rows = int(np.ceil(n_panels / n_cols))
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(panel_size * n_cols, panel_size * n_rows + extra_height),
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    return fig, axes


def _labels_or_none(labels: Any, n: int, name: str = "labels") -> np.ndarray | None:
    if labels is None:
        return None
    lab = check_array(labels, name, ndim=1, dtype=None)
    if lab.shape[0] != n:
        raise ValueError(f"{name} has {lab.shape[0]} entries but there are {n} samples")
    return lab


def _scatter_by_label(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray | None,
    label_name: str | None,
    s: float = 10,
    alpha: float = 0.6,
    legend: bool = True,
) -> None:
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
