"""Diagnostics of a fit: every loss of a training history on its own axes, the restored epoch marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perslib.plotting._base import ESTIMATE_COLOR, categorical_colors

__all__ = ["plot_training_diagnostics"]


def plot_training_diagnostics(
    history: pd.DataFrame,
    columns: Sequence[str] | None = None,
    reference_lines: Mapping[str, float] | None = None,
    ncols: int = 3,
    title: str | None = None,
) -> Figure:
    """A fit's training history with each loss on its own axes and the restored epoch marked.

    The terms of an objective live on different scales (a KL term per sample is tiny next
    to a prediction loss), so drawing them on one axis hides all but the largest. Here
    each column gets its own panel. A dashed vertical line marks the epoch with the
    lowest ``val_loss``, the epoch whose parameters early stopping restores (the
    training loop of :mod:`perslib._core.training`); ``reference_lines`` adds a dotted
    horizontal line per panel, e.g. the adversary's chance level :math:`\\log K` for
    :math:`K` training clusters.

    Parameters
    ----------
    history : pandas.DataFrame of shape (n_epochs, n_columns)
        An estimator's ``history_``: an ``epoch`` column and one numeric column per loss.
    columns : sequence of str, optional
        The columns to draw (default: every numeric column but ``epoch``).
    reference_lines : mapping of str to float, optional
        Column name → value of a horizontal reference line in that column's panel.
    ncols : int, default=3
        Panels per row.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per column (unused grid cells are switched off).

    Raises
    ------
    ValueError
        For a history without ``epoch`` column, unknown columns or reference lines, or
        ``ncols`` < 1.
    """
    import matplotlib.pyplot as plt

    if not isinstance(history, pd.DataFrame) or "epoch" not in history.columns or history.empty:
        raise ValueError("history must be a non-empty DataFrame with an 'epoch' column (an estimator's history_)")
    cols = (
        list(columns)
        if columns is not None
        else [c for c in history.columns if c != "epoch" and pd.api.types.is_numeric_dtype(history[c])]
    )
    missing = [c for c in cols if c not in history.columns]
    if missing or not cols:
        raise ValueError(
            f"columns {missing or cols} are not loss columns of history (columns: {list(history.columns)})"
        )
    refs = dict(reference_lines or {})
    unknown = [c for c in refs if c not in cols]
    if unknown:
        raise ValueError(f"reference_lines names columns {unknown} that are not drawn ({cols})")
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = int(min(ncols, len(cols)))
    nrows = int(np.ceil(len(cols) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), layout="constrained", squeeze=False)
    epochs = history["epoch"].to_numpy()
    best = None
    if "val_loss" in history.columns and history["val_loss"].notna().any():
        best = epochs[int(np.nanargmin(history["val_loss"].to_numpy(float)))]
    for ax, c, color in zip(axes.flat, cols, categorical_colors(len(cols))):
        ax.plot(epochs, history[c].to_numpy(float), color=color, lw=1.5)
        ax.set_title(c.replace("_", " "), fontsize="medium")
        if best is not None:
            ax.axvline(best, color=ESTIMATE_COLOR, ls="--", lw=1.0, label=f"restored epoch {best}")
        if c in refs:
            ax.axhline(refs[c], color="grey", ls=":", lw=1.2, label=f"reference {refs[c]:.3g}")
        ax.set_xlabel("epoch")
    for ax in list(axes.flat)[len(cols) :]:
        ax.set_axis_off()
    if best is not None or refs:
        axes.flat[0].legend(fontsize="small")
        for ax, c in zip(axes.flat, cols):
            if c in refs and ax is not axes.flat[0]:
                ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
