"""Bootstrap intervals for the per-sample parameters of personalized regression.

Personalized regression gives every sample i its own coefficients θ̂_i, but no standard
error. :func:`bootstrap_coef` refits the estimator on bootstrap resamples of the rows (or
of whole clusters) and reads, for each resample, every original sample's θ: a sample drawn
into the resample ("in bag") gets its own fitted row (the mean of its copies' rows), a
sample left out ("out of bag") gets the estimator's rule for new samples,
``predict_params(covariates)``. Percentiles of the n_boot draws give the intervals.

This is an approximation. The estimator shrinks every θ̂_i toward the population model
and toward its covariate neighbours; the bootstrap captures the *variance* of θ̂_i across
resamples, not that shrinkage *bias*, so where the truth lies far from its neighbours'
average the intervals are centred off the truth and cover it less often than the nominal
level. Out-of-bag draws (about 37% of them) come from the prediction rule, which smooths
more than the fit. Read the intervals as "how much would this sample's model move with a
different sample of the same size", not as exact confidence intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from perslib._core.runtime import progress_enabled, torch_threads

__all__ = ["BootstrapCoef", "bootstrap_coef"]


@dataclass
class BootstrapCoef:
    """Percentile bootstrap intervals of every sample's coefficients (:func:`bootstrap_coef`).

    Attributes
    ----------
    coef_low, coef_high : ndarray of shape (n_samples, n_features)
        The ``(1 - level)/2`` and ``(1 + level)/2`` percentiles of each coefficient's draws.
    coef_sd : ndarray of shape (n_samples, n_features)
        Standard deviation of the draws (``ddof=1``).
    coef_mean : ndarray of shape (n_samples, n_features)
        Mean of the draws.
    intercept_low, intercept_high, intercept_sd, intercept_mean : ndarray of shape (n_samples,)
        The same for the intercept.
    in_bag : ndarray of bool, shape (n_boot, n_samples)
        Whether sample i was drawn into resample b (else its draw came from
        ``predict_params``).
    coef_draws : ndarray of shape (n_boot, n_samples, n_features) or None
    intercept_draws : ndarray of shape (n_boot, n_samples) or None
        The draws themselves (``return_draws=True``).
    level : float
    n_boot : int
    """

    coef_low: np.ndarray
    coef_high: np.ndarray
    coef_sd: np.ndarray
    coef_mean: np.ndarray
    intercept_low: np.ndarray
    intercept_high: np.ndarray
    intercept_sd: np.ndarray
    intercept_mean: np.ndarray
    in_bag: np.ndarray
    coef_draws: np.ndarray | None
    intercept_draws: np.ndarray | None
    level: float
    n_boot: int

    def coverage(self, coef_true: Any) -> float:
        """Share of the entries of ``coef_true`` (n_samples, n_features) inside their interval."""
        truth = np.asarray(coef_true, dtype=float)
        if truth.shape != self.coef_low.shape:
            raise ValueError(f"coef_true must have shape {self.coef_low.shape}, got {truth.shape}")
        return float(np.mean((self.coef_low <= truth) & (truth <= self.coef_high)))


def _rows(a: Any, index: np.ndarray):
    return a.iloc[index] if isinstance(a, (pd.DataFrame, pd.Series)) else a[index]


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _resample(rng: np.random.Generator, n: int, codes: np.ndarray | None, n_groups: int) -> np.ndarray:
    """Row indices of one bootstrap resample: n rows, or whole clusters (as many clusters as there are)."""
    if codes is None:
        return rng.integers(0, n, size=n)
    members = [np.flatnonzero(codes == k) for k in range(n_groups)]
    picked = rng.integers(0, n_groups, size=n_groups)
    return np.concatenate([members[k] for k in picked])


def _one_draw(estimator, X, y, covariates, index: np.ndarray, seed: int, n: int):
    """Fit a clone on the rows ``index``; return (coef (n, p), intercept (n,), in_bag (n,))."""
    model = clone(estimator)
    params = model.get_params(deep=False)
    model.set_params(
        **{k: v for k, v in {"random_state": seed, "progress": False}.items() if k in params},
    )
    with torch_threads(1):
        model.fit(_rows(X, index), _rows(y, index), covariates=_rows(covariates, index))
    coef_fit = np.asarray(model.coef_, dtype=float)
    intercept_fit = np.asarray(model.intercept_, dtype=float).reshape(-1)
    if coef_fit.shape[0] != len(index):
        raise RuntimeError(
            f"{type(model).__name__}.coef_ has {coef_fit.shape[0]} rows after fitting {len(index)}; "
            "bootstrap_coef needs one row per training row"
        )
    counts = np.bincount(index, minlength=n)
    in_bag = counts > 0
    p = coef_fit.shape[1]
    coef = np.zeros((n, p))
    intercept = np.zeros(n)
    np.add.at(coef, index, coef_fit)  # copies of a sample: average their fitted rows
    np.add.at(intercept, index, intercept_fit)
    coef[in_bag] /= counts[in_bag, None]
    intercept[in_bag] /= counts[in_bag]
    out = np.flatnonzero(~in_bag)
    if out.size:
        c, b = model.predict_params(_rows(covariates, out))
        coef[out], intercept[out] = np.asarray(c, dtype=float), np.asarray(b, dtype=float).reshape(-1)
    return coef, intercept, in_bag


def bootstrap_coef(
    estimator,
    X,
    y,
    *,
    covariates,
    n_boot: int = 20,
    level: float = 0.9,
    groups=None,
    return_draws: bool = True,
    random_state: int | None = None,
    n_jobs: int = 1,
    progress: bool | None = None,
) -> BootstrapCoef:
    """Percentile bootstrap intervals of every sample's coefficients θ_i.

    For b = 1..n_boot: draw n rows with replacement (with ``groups``: as many clusters as
    there are, with replacement, keeping every row of a drawn cluster), fit a clone of
    ``estimator`` on them, and record every original sample's parameters — its own fitted
    row if it was drawn (the mean over its copies), else ``predict_params`` of its
    covariates (the estimator's rule for new samples). The intervals are the
    ``(1 ± level)/2`` percentiles of the n_boot draws per sample and coefficient.

    **An approximation.** Personalized regression shrinks θ̂_i toward the population model
    and toward covariate neighbours; the bootstrap measures the variance of θ̂_i, not
    that bias, so coverage of the true θ_i is typically well *below* ``level``. On the
    simulator :func:`perslib.data.make_personalized_regression` at its defaults (n = 2000,
    p = 5, rank 6) the 90% intervals covered 44% (n_boot = 10) and 48% (n_boot = 20) of
    the true coefficients: the root-mean-square bias of the bootstrap mean (0.23) exceeds
    the bootstrap standard deviation (0.13), while 90% of the intervals contain the
    full-data fit θ̂_i. With n_boot = 20 the percentiles themselves are rough (the 5% and
    95% points of 20 draws); use more resamples for final numbers.

    **Cost.** n_boot full refits of the estimator (each with its own seed drawn from
    ``random_state``, so initialisation noise is part of the spread), plus one
    ``predict_params`` call per refit: about n_boot times the estimator's fit time. An
    estimator with ``rank="auto"`` tries several ranks per refit; fixing ``rank`` to the
    fitted ``rank_`` is much cheaper.

    Parameters
    ----------
    estimator : PersonalizedRegressor or PersonalizedClassifier
        Fitted or not; only its parameters are used (it is cloned, never refitted itself).
        Anything with ``fit(X, y, covariates=)``, ``coef_`` (one row per training row),
        ``intercept_`` and ``predict_params(covariates)`` works.
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    covariates : array-like or DataFrame of shape (n_samples, n_covariates)
    n_boot : int, default=20
        Bootstrap resamples, >= 2.
    level : float, default=0.9
        Coverage of the percentile intervals, strictly between 0 and 1.
    groups : array-like of shape (n_samples,), optional
        Cluster labels: resample whole clusters (for clustered rows, where rows of one
        cluster are not independent).
    return_draws : bool, default=True
        Keep the draws (``coef_draws`` of shape (n_boot, n_samples, n_features)).
    random_state : int, optional
        Seeds the resamples and the refits' seeds.
    n_jobs : int, default=1
        Refits in parallel with joblib processes (-1: all cores); results do not depend on it.
    progress : bool, optional
        tqdm bar over the refits; ``None`` follows ``PERSLIB_PROGRESS``.

    Returns
    -------
    BootstrapCoef
        ``coef_low``, ``coef_high``, ``coef_sd``, ``coef_mean`` of shape
        (n_samples, n_features); ``intercept_low`` … of shape (n_samples,); ``in_bag``;
        the draws.

    Raises
    ------
    ValueError
        For n_boot < 2, a level outside (0, 1), or X, y, covariates or groups of different
        lengths.
    TypeError
        For an estimator without ``predict_params``.
    """
    n_boot = _check_int(n_boot, "n_boot", 2)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    level = float(level)
    if not (n_jobs == -1 or (not isinstance(n_jobs, bool) and isinstance(n_jobs, (int, np.integer)) and n_jobs >= 1)):
        raise ValueError(f"n_jobs must be -1 or an integer >= 1, got {n_jobs!r}")
    if not hasattr(estimator, "predict_params") or not hasattr(estimator, "fit"):
        raise TypeError(
            f"estimator must have fit(X, y, covariates=) and predict_params(covariates) "
            f"(a PersonalizedRegressor or PersonalizedClassifier), got {type(estimator).__name__}"
        )
    if covariates is None:
        raise ValueError("covariates is required: pass covariates=U of shape (n_samples, n_covariates)")
    n = len(X)
    for name, a in (("y", y), ("covariates", covariates)):
        if len(a) != n:
            raise ValueError(f"{name} must have one row per row of X ({n}), got {len(a)}")
    if np.ndim(covariates) != 2:
        raise ValueError(f"covariates must be 2-D of shape (n_samples, n_covariates), got {np.ndim(covariates)}-D")
    codes, n_groups = None, 0
    if groups is not None:
        g = np.asarray(groups)
        if g.ndim != 1 or len(g) != n:
            raise ValueError(f"groups must be 1-D with one label per row of X ({n}), got shape {g.shape}")
        codes, uniques = pd.factorize(g, sort=True)
        n_groups = len(uniques)
        if n_groups < 2:
            raise ValueError(f"groups must contain at least 2 clusters to resample, got {n_groups}")

    rng = np.random.default_rng(random_state)
    jobs = [(_resample(rng, n, codes, n_groups), int(rng.integers(2**31 - 1))) for _ in range(n_boot)]
    show = progress_enabled(progress)
    if n_jobs == 1:
        from tqdm import tqdm

        results = [
            _one_draw(estimator, X, y, covariates, index, seed, n)
            for index, seed in tqdm(jobs, desc="bootstrap refits", disable=not show, leave=False)
        ]
    else:
        from joblib import Parallel, delayed
        from tqdm import tqdm

        stream = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_one_draw)(estimator, X, y, covariates, index, seed, n) for index, seed in jobs
        )
        results = list(tqdm(stream, total=n_boot, desc="bootstrap refits", disable=not show, leave=False))

    coef = np.stack([r[0] for r in results])  # (n_boot, n, p)
    intercept = np.stack([r[1] for r in results])  # (n_boot, n)
    in_bag = np.stack([r[2] for r in results])
    q = [(1.0 - level) / 2.0, (1.0 + level) / 2.0]
    c_lo, c_hi = np.quantile(coef, q, axis=0)
    b_lo, b_hi = np.quantile(intercept, q, axis=0)
    return BootstrapCoef(
        coef_low=c_lo,
        coef_high=c_hi,
        coef_sd=coef.std(axis=0, ddof=1),
        coef_mean=coef.mean(axis=0),
        intercept_low=b_lo,
        intercept_high=b_hi,
        intercept_sd=intercept.std(axis=0, ddof=1),
        intercept_mean=intercept.mean(axis=0),
        in_bag=in_bag,
        coef_draws=coef if return_draws else None,
        intercept_draws=intercept if return_draws else None,
        level=level,
        n_boot=n_boot,
    )
