"""Comparing models over few, correlated cross-validation folds.

Fold scores are not independent draws: any two training sets share most of their data,
so the spread of k fold scores underestimates how much the mean score would move on a new
sample of the same size. With k = 3 or 5 folds the normal quantile 1.96 is too small as
well. This module gives

* :func:`corrected_t_interval` — the corrected resampled t interval of Nadeau and Bengio
  (2003) for the mean of k fold scores: the variance :math:`s^2/k` of the mean is replaced
  by :math:`(1/k + n_\\text{test}/n_\\text{train})\\,s^2` and the normal quantile by the t
  quantile with k - 1 degrees of freedom;
* :func:`split_ratio` — the mean :math:`n_\\text{test}/n_\\text{train}` of a set of splits;
* :func:`corrected_summary` — mean and corrected interval for every (model, metric) of a
  score table from :func:`perslib.evaluation.cross_validate_models` (the layout of
  :func:`perslib.evaluation.summarize_folds`);
* :func:`paired_differences` — per-fold differences of every model from a reference model
  on the *same* folds, their mean and corrected interval. Pairing removes what the folds
  share (a hard fold is hard for every model), so a difference can be clear even where the
  intervals of the two models overlap.

Reference: C. Nadeau, Y. Bengio. *Inference for the generalization error.* Machine
Learning 52:239-281 (2003); R. R. Bouckaert, E. Frank. *Evaluating the replicability of
significance tests for comparing learning algorithms.* PAKDD 2004.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from perslib._core.validation import check_array

__all__ = ["corrected_summary", "corrected_t_interval", "paired_differences", "split_ratio"]


def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (float, int)) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    return float(level)


def _check_ratio(test_train_ratio: Any) -> float:
    if isinstance(test_train_ratio, bool) or not isinstance(test_train_ratio, (float, int, np.floating, np.integer)):
        raise ValueError(f"test_train_ratio must be a non-negative number, got {test_train_ratio!r}")
    r = float(test_train_ratio)
    if not np.isfinite(r) or r < 0:
        raise ValueError(f"test_train_ratio must be a finite non-negative number, got {test_train_ratio!r}")
    return r


def _check_bounds(bounds: Any) -> tuple[float, float] | None:
    """Validate an optional ``(lower, upper)`` range of a metric (e.g. ``(0, 1)`` for AUROC)."""
    if bounds is None:
        return None
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be None or a pair (lower, upper) of numbers, got {bounds!r}") from None
    if not lo < hi:
        raise ValueError(f"bounds must satisfy lower < upper, got {bounds!r}")
    return lo, hi


def _clip_interval(mean: float, low: float, high: float, bounds: Any) -> tuple[float, float, float]:
    """``(mean, low, high)`` with ``low``/``high`` moved inside ``bounds`` (None: unchanged)."""
    b = _check_bounds(bounds)
    if b is None:
        return mean, low, high
    return mean, float(np.clip(low, *b)), float(np.clip(high, *b))


def corrected_t_interval(
    values: Any, test_train_ratio: float, level: float = 0.95, bounds: tuple[float, float] | None = None
) -> tuple[float, float, float]:
    """Mean of k fold scores with the Nadeau–Bengio corrected resampled t interval.

    .. math::  \\bar v \\pm t_{k-1,\\,(1+\\text{level})/2}\\;
               \\sqrt{\\Big(\\frac{1}{k} + \\frac{n_\\text{test}}{n_\\text{train}}\\Big)\\, s^2}

    with ``s`` the sample standard deviation (``ddof=1``) of the k values. The term
    :math:`n_\\text{test}/n_\\text{train}` accounts for the correlation between fold
    scores that comes from overlapping training sets; with ``test_train_ratio=0`` the
    interval is the ordinary one-sample t interval :math:`\\bar v \\pm t\\,s/\\sqrt{k}`.
    For k-fold cross-validation :math:`n_\\text{test}/n_\\text{train} \\approx 1/(k-1)`.

    Parameters
    ----------
    values : array-like of shape (k,)
        One score per fold (or one per-fold difference between two models); k >= 2.
    test_train_ratio : float
        :math:`n_\\text{test}/n_\\text{train}`, e.g. from :func:`split_ratio`; >= 0.
    level : float, default=0.95
        Coverage, strictly between 0 and 1.
    bounds : (float, float), optional
        Range of the metric, e.g. ``(0, 1)`` for AUROC or accuracy: ``low`` and ``high``
        are clipped into it (only when asked: by default nothing is clipped, and an
        interval that reaches past 1 says that the folds are too few or too variable).

    Returns
    -------
    (mean, low, high) : tuple of float

    Raises
    ------
    ValueError
        For NaN, fewer than two values, a negative ratio, a level outside (0, 1) or
        bounds that are not a pair ``lower < upper``.
    """
    _check_bounds(bounds)
    v = check_array(values, "values", ndim=1)
    if v.size < 2:
        raise ValueError(f"values needs at least 2 entries for a standard deviation, got {v.size}")
    ratio, lvl = _check_ratio(test_train_ratio), _check_level(level)
    k = v.size
    t = float(stats.t.ppf(0.5 + lvl / 2.0, df=k - 1))
    half = t * float(np.sqrt((1.0 / k + ratio) * v.var(ddof=1)))
    mean = float(v.mean())
    return _clip_interval(mean, mean - half, mean + half, bounds)


def split_ratio(splits: Iterable[tuple[Any, Any]]) -> float:
    """Mean ratio :math:`n_\\text{test}/n_\\text{train}` over cross-validation splits.

    Parameters
    ----------
    splits : iterable of (train, test)
        Index arrays per fold, e.g. ``cv.split(X, y, groups)`` or the ``("splits", f)``
        entries of :func:`perslib.evaluation.cross_validate_models` with
        ``return_estimators=True``.

    Returns
    -------
    float
    """
    ratios = []
    for i, split in enumerate(splits):
        try:
            train, test = split
        except (TypeError, ValueError):
            raise ValueError(f"splits must yield (train, test) pairs; entry {i} is {type(split).__name__}") from None
        n_train, n_test = len(train), len(test)
        if n_train == 0:
            raise ValueError(f"splits: fold {i} has an empty training set")
        ratios.append(n_test / n_train)
    if not ratios:
        raise ValueError("splits is empty")
    return float(np.mean(ratios))


def _check_scores(scores: Any) -> pd.DataFrame:
    need = {"fold", "model", "metric", "value"}
    if not isinstance(scores, pd.DataFrame) or not need <= set(scores.columns):
        raise ValueError(f"scores must be a DataFrame with columns {sorted(need)} (from cross_validate_models)")
    return scores


def corrected_summary(
    scores: pd.DataFrame, test_train_ratio: float, level: float = 0.95, metrics: Iterable[str] | None = None
) -> pd.DataFrame:
    """Mean and corrected t interval over folds of every (model, metric) in a score table.

    The same layout as :func:`perslib.evaluation.summarize_folds`, with the interval of
    :func:`corrected_t_interval` instead of the normal approximation.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`perslib.evaluation.cross_validate_models` (columns
        ``fold, model, metric, value``).
    test_train_ratio : float
        :math:`n_\\text{test}/n_\\text{train}` of the folds (:func:`split_ratio`).
    level : float, default=0.95
        Coverage of the interval.
    metrics : iterable of str, optional
        Keep only these metrics.

    Returns
    -------
    pandas.DataFrame
        Index ``(model, metric)`` in the table's order; columns ``mean``, ``low``,
        ``high``, ``sd`` (``ddof=1``) and ``n_folds``. A model with one fold gets NaN bounds.
    """
    data = _check_scores(scores)
    ratio, lvl = _check_ratio(test_train_ratio), _check_level(level)
    if metrics is not None:
        data = data[data["metric"].isin(list(metrics))]
    rows = []
    for (model, metric), part in data.groupby(["model", "metric"], sort=False):
        values = part["value"].to_numpy(float)
        if len(values) >= 2:
            mean, low, high = corrected_t_interval(values, ratio, lvl)
            sd = float(values.std(ddof=1))
        else:
            mean, low, high, sd = float(values.mean()), np.nan, np.nan, np.nan
        rows.append(
            {"model": model, "metric": metric, "mean": mean, "low": low, "high": high, "sd": sd, "n_folds": len(values)}
        )
    columns = ["model", "metric", "mean", "low", "high", "sd", "n_folds"]
    return pd.DataFrame(rows, columns=columns).set_index(["model", "metric"])


def paired_differences(
    scores: pd.DataFrame,
    metric: str,
    reference: str,
    test_train_ratio: float,
    level: float = 0.95,
    models: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Per-fold score differences of every model from a reference model, with corrected intervals.

    For model m and fold f the difference is :math:`d_f = v_{m,f} - v_{\\text{ref},f}`;
    the table gives the mean of the :math:`d_f` and its corrected t interval
    (:func:`corrected_t_interval` applied to the differences, Nadeau and Bengio's corrected
    paired t test), and the fold differences themselves.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`perslib.evaluation.cross_validate_models`.
    metric : str
        The metric compared (a value of the ``metric`` column).
    reference : str
        The model every other model is compared with.
    test_train_ratio : float
        :math:`n_\\text{test}/n_\\text{train}` of the folds (:func:`split_ratio`).
    level : float, default=0.95
        Coverage of the interval.
    models : iterable of str, optional
        Models to compare (default: every model but the reference, in the table's order).

    Returns
    -------
    pandas.DataFrame
        One row per model (index ``model``): ``mean_diff``, ``low``, ``high``,
        ``excludes_zero`` (bool: the interval lies on one side of 0), and one column
        ``fold <f>`` per fold with that fold's difference. ``attrs`` holds ``metric``,
        ``reference`` and ``level``.

    Raises
    ------
    ValueError
        For a metric or model that is not in ``scores``, or a model whose folds differ
        from the reference's.
    """
    data = _check_scores(scores)
    ratio, lvl = _check_ratio(test_train_ratio), _check_level(level)
    data = data[data["metric"] == metric]
    if data.empty:
        raise ValueError(f"metric {metric!r} is not in scores (metrics: {sorted(scores['metric'].unique())})")
    wide = data.pivot_table(index="fold", columns="model", values="value", aggfunc="first", sort=False)
    if reference not in wide.columns:
        raise ValueError(f"reference {reference!r} is not one of the models {list(wide.columns)}")
    names = [m for m in pd.unique(data["model"]) if m != reference] if models is None else list(models)
    missing = [m for m in names if m not in wide.columns]
    if missing:
        raise ValueError(f"models {missing} have no {metric!r} scores")
    rows = []
    for name in names:
        d = (wide[name] - wide[reference]).sort_index()
        if d.isna().any():
            raise ValueError(f"model {name!r} and reference {reference!r} were not scored on the same folds")
        mean, low, high = corrected_t_interval(d.to_numpy(float), ratio, lvl)
        row = {"model": name, "mean_diff": mean, "low": low, "high": high, "excludes_zero": bool(low > 0 or high < 0)}
        row.update({f"fold {f}": float(v) for f, v in d.items()})
        rows.append(row)
    out = pd.DataFrame(rows).set_index("model")
    out.attrs.update(metric=metric, reference=reference, level=lvl)
    return out
