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

Modules: ``_base`` (style, saving, shared helpers), ``parameters``, ``clusters``, ``embeddings``, ``scores``,
``comparison`` (paired per-fold differences), ``diagnostics`` (a fit's history), ``images``, ``report``
(the data report of notebook 08);
everything public is importable from ``perslib.plotting``.
"""

from perslib.plotting._base import (
    ESTIMATE_COLOR,
    PALETTE,
    categorical_colors,
    save_figure,
    set_style,
)
from perslib.plotting.clusters import (
    plot_clusters_2d,
    plot_image_grid,
    plot_soft_memberships,
)
from perslib.plotting.comparison import plot_paired_differences
from perslib.plotting.diagnostics import plot_training_diagnostics
from perslib.plotting.embeddings import plot_embeddings
from perslib.plotting.images import plot_saliency_maps
from perslib.plotting.parameters import (
    plot_dictionary,
    plot_parameter_space,
    plot_parameters_vs_covariate,
    plot_snapshots,
    plot_sweep,
)
from perslib.plotting.report import (
    plot_caterpillar,
    plot_cluster_sizes,
    plot_coefficient_spread,
    plot_importance,
)
from perslib.plotting.scores import (
    plot_fold_scores,
    plot_group_scores,
    plot_history,
    plot_scaling,
    plot_scatter,
)

__all__ = [
    "ESTIMATE_COLOR",
    "PALETTE",
    "categorical_colors",
    "save_figure",
    "set_style",
    "plot_parameter_space",
    "plot_parameters_vs_covariate",
    "plot_dictionary",
    "plot_sweep",
    "plot_snapshots",
    "plot_clusters_2d",
    "plot_image_grid",
    "plot_soft_memberships",
    "plot_saliency_maps",
    "plot_embeddings",
    "plot_group_scores",
    "plot_scatter",
    "plot_history",
    "plot_scaling",
    "plot_fold_scores",
    "plot_paired_differences",
    "plot_training_diagnostics",
    "plot_caterpillar",
    "plot_cluster_sizes",
    "plot_coefficient_spread",
    "plot_importance",
]
