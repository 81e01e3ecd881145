"""Figures that compare models fold by fold: paired differences from a reference model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from perslib.plotting._base import ESTIMATE_COLOR, _new_axes, categorical_colors

__all__ = ["plot_paired_differences"]


def plot_paired_differences(
    table: pd.DataFrame,
    ax: Axes | None = None,
    models: Sequence[str] | None = None,
    score_label: str | None = None,
    title: str | None = None,
) -> Figure:
    """Per-fold differences from a reference model, with their mean and corrected interval.

    One row per model: the fold differences as small dots (joined by nothing: each is
    one fold), the mean difference as a large dot and its interval as a bar, and a line
    at 0 (no difference from the reference). A bar that does not cross 0 is a difference
    the folds support at the table's level.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`perslib.evaluation.paired_differences` (index ``model``; columns
        ``mean_diff``, ``low``, ``high`` and ``fold <f>``).
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when omitted.
    models : sequence of str, optional
        Rows to show, top to bottom (default: all, in the table's order).
    score_label, title : str, optional
        Horizontal axis label (default built from the table's ``attrs``) and title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = {"mean_diff", "low", "high"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"table must be a DataFrame with columns {sorted(need)} (from paired_differences)")
    folds = [c for c in table.columns if str(c).startswith("fold ")]
    names = list(models) if models is not None else list(table.index)
    missing = [m for m in names if m not in table.index]
    if missing:
        raise ValueError(f"models {missing} are not rows of table (rows: {list(table.index)})")
    fig, ax = _new_axes(ax, figsize=(5.6, 0.45 * len(names) + 1.2))
    for i, (name, color) in enumerate(zip(names, categorical_colors(len(names)))):
        row = len(names) - 1 - i
        vals = table.loc[name, folds].to_numpy(float)
        jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
        ax.scatter(vals, row + jitter, s=14, color=color, alpha=0.55, linewidths=0)
        ax.plot([table.loc[name, "low"], table.loc[name, "high"]], [row, row], color=color, lw=2.2)
        ax.scatter([table.loc[name, "mean_diff"]], [row], s=55, color=color, zorder=3, edgecolors="white")
    ax.axvline(0.0, color=ESTIMATE_COLOR, ls=":", lw=1.1)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names[::-1])
    ax.set_ylim(-0.6, len(names) - 0.4)
    attrs = table.attrs
    default = (
        f"{attrs.get('metric', 'score')} − {attrs.get('reference', 'reference')} "
        f"(folds; mean and {attrs.get('level', 0.95):.0%} corrected interval)"
    )
    ax.set_xlabel(score_label or default)
    if title:
        ax.set_title(title)
    return fig
