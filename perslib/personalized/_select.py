"""Choosing personalized regression's settings without the true θ: the held-out loss.

No user knows the true per-sample models, so settings cannot be scored against them. What
every fit of :class:`~perslib.personalized.PersonalizedRegressor` has is its **held-out
loss**: the prediction loss of the ``val_fraction`` of samples that early stopping holds
out, whose θ is predicted from their covariate neighbours (the rule for new samples). It is
the loss that ``rank="auto"`` uses to choose the rank; :func:`select_by_held_out_loss`
uses it for any setting (the matching weight γ, the pull λ, the number of partners).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

__all__ = ["select_by_held_out_loss"]


def select_by_held_out_loss(
    estimator,
    X,
    y,
    *,
    covariates,
    param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
    tolerance: float = 0.0,
    return_estimators: bool = False,
) -> tuple[Any, pd.DataFrame] | tuple[Any, pd.DataFrame, list]:
    """Fit one clone of ``estimator`` per setting and keep the one with the lowest held-out loss.

    Every clone holds out the same samples (the estimator's ``random_state`` fixes the
    split), so the losses are comparable. With ``tolerance > 0`` the *first* setting of
    the grid within ``(1 + tolerance)`` times the best loss is kept, which prefers the
    simpler settings when they are listed first (as ``rank="auto"`` does with 1 %).

    Parameters
    ----------
    estimator : PersonalizedRegressor or PersonalizedClassifier
        Unfitted or fitted; it is cloned, never changed. Needs ``val_fraction > 0`` and a
        fixed ``random_state``.
    X : array-like of shape (n_samples, n_features)
        Predictors.
    y : array-like of shape (n_samples,)
        Responses.
    covariates : array-like of shape (n_samples, n_covariates)
        The covariates that say whose model a sample has.
    param_grid : dict of str to sequence, or sequence of such dicts
        Settings to try, as for :class:`sklearn.model_selection.ParameterGrid`.
    tolerance : float, default=0.0
        Relative slack on the best held-out loss (>= 0).
    return_estimators : bool, default=False
        Also return every fitted clone, in grid order.

    Returns
    -------
    best : estimator
        The fitted clone with the chosen setting.
    table : pandas.DataFrame of shape (n_settings, n_params + 3)
        One row per setting in grid order: the parameters, ``held_out_loss``,
        ``fit_time`` (s) and ``chosen`` (bool).
    estimators : list, only with ``return_estimators=True``
        The fitted clones, one per row of ``table``.

    Raises
    ------
    ValueError
        For an empty grid, a parameter the estimator does not have, ``val_fraction`` of
        0, no fixed ``random_state`` or a negative ``tolerance``.
    """
    grid = list(ParameterGrid(param_grid))
    if not grid or grid == [{}]:
        raise ValueError("param_grid must name at least one parameter with at least one value")
    known = estimator.get_params(deep=False)
    unknown = sorted({k for setting in grid for k in setting} - set(known))
    if unknown:
        raise ValueError(f"param_grid names parameters {unknown} that {type(estimator).__name__} does not have")
    if not float(known.get("val_fraction", 0) or 0) > 0 or any(float(s.get("val_fraction", 1)) <= 0 for s in grid):
        raise ValueError("select_by_held_out_loss needs held-out samples: val_fraction must be > 0")
    if known.get("random_state") is None:
        raise ValueError("random_state must be a fixed int, so that every setting holds out the same samples")
    if not (isinstance(tolerance, (int, float)) and np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    rows, fits = [], []
    for setting in grid:
        model = clone(estimator).set_params(**setting)
        t0 = time.perf_counter()
        model.fit(X, y, covariates=covariates)
        loss = float(np.nanmin(model.history_["val_loss"]))
        rows.append({**setting, "held_out_loss": loss, "fit_time": time.perf_counter() - t0})
        fits.append(model)
    table = pd.DataFrame(rows)
    losses = table["held_out_loss"].to_numpy()
    chosen = int(np.flatnonzero(losses <= losses.min() * (1 + tolerance))[0])
    table["chosen"] = np.arange(len(table)) == chosen
    return (fits[chosen], table, fits) if return_estimators else (fits[chosen], table)
