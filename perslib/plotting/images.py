"""Figures of image models: saliency maps side by side, with a region (a site marker) outlined."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from perslib._core.validation import check_array

__all__ = ["plot_saliency_maps"]


def plot_saliency_maps(
    maps: Mapping[str, Any],
    image: Any = None,
    region: Any = None,
    n_cols: int = 6,
    panel_size: float = 1.9,
    cmap: str = "magma",
    region_label: str = "site marker",
) -> Figure:
    """One panel per model: a saliency map, each scaled to its own maximum.

    Parameters
    ----------
    maps : mapping of str to array-like of shape (H, W)
        Panel title -> non-negative saliency map (e.g. the mean of
        :func:`perslib.armed.saliency_maps` over the images of one site).
    image : array-like of shape (H, W), optional
        Shown first, in grey (e.g. the mean image of that site).
    region : array-like of bool, shape (H, W), optional
        Pixels outlined in every panel (e.g. the site marker,
        :func:`perslib.data.site_marker_masks`).
    n_cols : int, default=6
        Panels per row.
    panel_size : float, default=1.9
        Side of one panel in inches.
    cmap : str, default="magma"
    region_label : str, default="site marker"
        Legend text of the outline.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(maps, Mapping) or not maps:
        raise ValueError("maps must be a non-empty mapping of title -> (H, W) array")
    arrays = {str(k): check_array(v, f"maps[{k!r}]", ndim=2) for k, v in maps.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"every map must have the same shape, got {sorted(shapes)}")
    shape = shapes.pop()
    panels = ([("image", check_array(image, "image", ndim=2))] if image is not None else []) + list(arrays.items())
    mask = None if region is None else check_array(region, "region", ndim=2, dtype=bool)
    for name, arr in [("image", panels[0][1] if image is not None else None), ("region", mask)]:
        if arr is not None and arr.shape != shape:
            raise ValueError(f"{name} must have the maps' shape {shape}, got {arr.shape}")
    if not isinstance(n_cols, (int, np.integer)) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive int, got {n_cols!r}")
    cols = min(n_cols, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (title, arr) in zip(axes.ravel(), panels):
        is_image = image is not None and title == "image"
        top = float(arr.max()) if arr.max() > 0 else 1.0
        ax.imshow(
            arr, cmap="gray" if is_image else cmap, vmin=0 if not is_image else None, vmax=None if is_image else top
        )
        ax.set_title(textwrap.fill(title, 20), fontsize="small", loc="center")
        if mask is not None:
            for r, c in zip(*np.nonzero(mask)):
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, ec="#00d5ff", lw=0.8))
    if mask is not None:
        handle = Rectangle((0, 0), 1, 1, fill=False, ec="#00d5ff", lw=1.2)
        fig.legend([handle], [region_label], loc="lower center", ncol=1, fontsize="small")
    fig.tight_layout(rect=(0, 0.06 if mask is not None else 0, 1, 1))
    return fig
