"""Scores of models that serve clusters: named metrics, per-cluster scores, intervals over folds,
and how much a model leans on some columns.

The metrics are scikit-learn's; :data:`METRICS` only names them and makes the undefined
cases (AUROC of one class, R² of a constant target) NaN, so that one small cluster does
not abort a per-cluster table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score, roc_auc_score

from perslib._core.validation import check_array, check_consistent_length, check_random_state
from perslib.evaluation._compare import _check_bounds, _clip_interval

__all__ = ["METRICS", "mean_ci", "per_group_score", "permutation_score_drop"]


def _auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float("nan") if np.unique(y_true).size < 2 else float(roc_auc_score(y_true, y_score))


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float("nan") if np.ptp(np.asarray(y_true, dtype=float)) == 0 else float(r2_score(y_true, y_pred))


#: Named metrics accepted by :func:`per_group_score` and :func:`permutation_score_drop`.
#: Each maps ``(y_true, y_pred) -> float``; ``"auroc"`` expects scores or
#: probabilities of the positive class as ``y_pred``; the others expect predictions.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y, p: float(accuracy_score(y, p)),
    "auroc": _auroc,
    "r2": _r2,
    "mse": lambda y, p: float(mean_squared_error(y, p)),
}


def _resolve_metric(metric: str | Callable) -> tuple[str, Callable]:
    if callable(metric):
        return getattr(metric, "__name__", "score"), metric
    if isinstance(metric, str) and metric.lower() in METRICS:
        return metric.lower(), METRICS[metric.lower()]
    raise ValueError(f"metric must be one of {sorted(METRICS)} or a callable (y_true, y_pred) -> float, got {metric!r}")


def _as_1d(value: Any, name: str) -> np.ndarray:
    """A 1-D array with NaN rejected, keeping integer / string / bool dtypes as they are."""
    arr = check_array(value, name, ndim=(1, 2), dtype=None)
    if arr.ndim == 2:
        if arr.shape[1] != 1:
            raise ValueError(f"{name} must be 1-D (or a single column), got shape {arr.shape}")
        arr = arr[:, 0]
    if arr.dtype.kind == "O":
        # object columns (pandas strings, mixed) may still hide NaN / None
        if pd.isna(pd.Series(arr)).any():
            raise ValueError(f"{name} contains NaN or None; expected complete values")
    return arr


# --------------------------------------------------------------------------- per group
def per_group_score(
    y_true: Any,
    y_pred: Any,
    groups: Any,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
) -> pd.DataFrame:
    """Score predictions separately within each group (cluster, site, patient).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True targets (class labels, or values for ``"r2"``/``"mse"``).
    y_pred : array-like of shape (n,)
        Predicted labels for ``"accuracy"``, positive-class scores or probabilities
        for ``"auroc"``, predicted values for ``"r2"``/``"mse"``.
    groups : array-like of shape (n,)
        Group label of each sample (any hashable, sortable values).
    metric : {"accuracy", "auroc", "r2", "mse"} or callable, default="accuracy"
        A callable is called as ``metric(y_true_g, y_pred_g)`` on each group's rows
        and must return a float. ``"auroc"`` (and ``"r2"``) are NaN in a group where
        they are undefined (a single class; a constant target).

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by group, with columns ``group``, ``n`` (number of
        samples) and ``score``. ``frame.attrs["metric"]`` names the metric.

    Raises
    ------
    ValueError
        For NaN in any input, inputs of different lengths, or an unknown metric.
    """
    name, fn = _resolve_metric(metric)
    yt = _as_1d(y_true, "y_true")
    yp = _as_1d(y_pred, "y_pred")
    g = _as_1d(groups, "groups")
    check_consistent_length(y_true=yt, y_pred=yp, groups=g)
    codes, uniques = pd.factorize(g, sort=True)
    rows = []
    for k, label in enumerate(uniques):
        mask = codes == k
        rows.append({"group": label, "n": int(mask.sum()), "score": float(fn(yt[mask], yp[mask]))})
    frame = pd.DataFrame(rows, columns=["group", "n", "score"])
    frame.attrs["metric"] = name
    return frame


# --------------------------------------------------------------------------- intervals
def mean_ci(values: Any, level: float = 0.95, bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and normal-approximation confidence interval over k repeated results.

    .. math::  \\bar v \\pm z_{(1+\\text{level})/2} \\; \\frac{s}{\\sqrt{k}}

    with ``s`` the sample standard deviation (``ddof=1``) of the k values. At
    ``level=0.95`` the multiplier is z = 1.96, the convention of the ARMED paper
    (Nguyen et al., TPAMI 2023), which reports mean ± 1.96·sd/√10 over 10 folds.

    This interval assumes the k values are **independent** draws and k large (normal
    quantile). Neither holds for cross-validation fold scores: training sets overlap, so
    fold scores are positively correlated and ``s/√k`` understates the uncertainty of
    their mean, and with 3-10 folds the t quantile is noticeably larger than z. For fold
    scores use :func:`perslib.evaluation.corrected_t_interval` (Nadeau–Bengio corrected
    resampled t) or :func:`perslib.evaluation.corrected_summary`; keep this function for
    genuinely independent repeats (e.g. seeds on fresh data) or to reproduce the paper's
    numbers. The interval is not clipped: for a bounded metric (AUROC, accuracy) it can
    reach past the bound.

    Parameters
    ----------
    values : array-like of shape (k,)
        One score per fold, seed or cluster; k >= 2.
    level : float, default=0.95
        Coverage of the interval, strictly between 0 and 1.
    bounds : (float, float), optional
        Range of the metric, e.g. ``(0, 1)``: ``low`` and ``high`` are clipped into it.
        By default nothing is clipped.

    Returns
    -------
    (mean, low, high) : tuple of float

    Raises
    ------
    ValueError
        For NaN, fewer than two values, a level outside (0, 1) or bounds that are not a
        pair ``lower < upper``.
    """
    _check_bounds(bounds)
    v = check_array(values, "values", ndim=1)
    if v.size < 2:
        raise ValueError(f"values needs at least 2 entries for a standard deviation, got {v.size}")
    if not (isinstance(level, (float, int)) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    z = float(stats.norm.ppf(0.5 + float(level) / 2.0))
    mean = float(v.mean())
    half = z * float(v.std(ddof=1)) / np.sqrt(v.size)
    return _clip_interval(mean, mean - half, mean + half, bounds)


# --------------------------------------------------------------------------- reliance
def permutation_score_drop(
    predict: Callable[[np.ndarray], np.ndarray],
    X: Any,
    y: Any,
    columns: Sequence[int],
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "accuracy",
    n_repeats: int = 5,
    random_state: Any = None,
) -> tuple[float, np.ndarray]:
    """How much a model's score falls when some columns are shuffled together.

    The rows of ``X[:, columns]`` are permuted *jointly* (one permutation for all the
    listed columns), which breaks their link with the target and with the other
    columns while keeping their joint distribution. Shuffling correlated columns one at
    a time (as ``sklearn.inspection.permutation_importance`` does) would understate
    the reliance, because the copy left intact still carries the information.

    Parameters
    ----------
    predict : callable
        ``predict(X) -> y_pred``, e.g. ``model.predict`` (or a function returning
        positive-class probabilities for ``metric="auroc"``).
    X : array-like of shape (n, d)
        Evaluation features.
    y : array-like of shape (n,)
        Evaluation targets.
    columns : sequence of int
        Column indices to shuffle together.
    metric : str or callable, default="accuracy"
        As in :func:`per_group_score`; higher must mean better (for ``"mse"`` the drop
        is negative when the error grows).
    n_repeats : int, default=5
        Number of independent permutations.
    random_state : int, numpy Generator or None
        Seeds the permutations.

    Returns
    -------
    drop : float
        Baseline score minus the mean score over the permuted copies.
    permuted_scores : numpy.ndarray of shape (n_repeats,)
        Score of each permuted copy.
    """
    _, fn = _resolve_metric(metric)
    Xa = check_array(X, "X", ndim=2)
    ya = _as_1d(y, "y")
    check_consistent_length(X=Xa, y=ya)
    cols = [int(c) for c in np.atleast_1d(columns)]
    if not cols or any(c < -Xa.shape[1] or c >= Xa.shape[1] for c in cols):
        raise ValueError(f"columns must be non-empty column indices of X (d={Xa.shape[1]}), got {list(columns)!r}")
    if not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive int, got {n_repeats!r}")
    rng = check_random_state(random_state)
    base = float(fn(ya, np.asarray(predict(Xa))))
    scores = np.empty(int(n_repeats))
    for r in range(int(n_repeats)):
        Xp = Xa.copy()
        Xp[:, cols] = Xa[rng.permutation(Xa.shape[0])][:, cols]
        scores[r] = fn(ya, np.asarray(predict(Xp)))
    return base - float(scores.mean()), scores
