"""How close estimated per-sample parameters are to the true ones, and what shapes them.

* :func:`parameter_mse` compares per-sample parameters θ̂ᵢ with a simulator's θᵢ;
* :func:`binned_explained_variance` gives the share of each coefficient's spread that one
  covariate explains (a correlation ratio, so non-linear dependence counts too);
* :func:`low_rank_floor` is the smallest error any rank-q dictionary can reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from perslib._core.validation import check_array, check_consistent_length
from perslib.evaluation._scores import _as_1d

__all__ = ["binned_explained_variance", "low_rank_floor", "parameter_mse"]


# --------------------------------------------------------------------------- parameters
def parameter_mse(theta_hat: Any, theta_true: Any, per_sample: bool = False) -> float | np.ndarray:
    """Mean squared error between estimated and true per-sample parameters.

    .. math::  \\mathrm{MSE} = \\frac{1}{n p} \\sum_{i=1}^{n} \\sum_{j=1}^{p} (\\hat\\theta_{ij} - \\theta_{ij})^2

    A single pooled estimate (shape ``(p,)``) is compared with every sample's θᵢ. The
    best possible constant estimate is the column mean of θ, whose error is the
    average per-coordinate variance ``theta_true.var(axis=0).mean()``; a pooled model
    can never do better than that.

    Parameters
    ----------
    theta_hat : array-like of shape (n, p) or (p,)
        Estimated parameters: one row per sample, or one vector shared by all samples
        (broadcast over the rows of ``theta_true``). A ``(1, p)`` array also broadcasts.
    theta_true : array-like of shape (n, p) or (n,)
        True parameters, one row per sample. A 1-D array is read as ``p = 1``.
    per_sample : bool, default=False
        Return the mean over coordinates for each sample (shape ``(n,)``) instead of
        the grand mean.

    Returns
    -------
    float or numpy.ndarray of shape (n,)

    Raises
    ------
    ValueError
        If either input contains NaN/inf, or the shapes do not match.
    """
    truth = check_array(theta_true, "theta_true", ndim=(1, 2))
    if truth.ndim == 1:
        truth = truth[:, None]
    est = check_array(theta_hat, "theta_hat", ndim=(1, 2))
    n, p = truth.shape
    if est.ndim == 1:
        if truth.shape[1] == 1 and est.shape[0] == n and n != 1:
            est = est[:, None]  # a (n,) estimate of a scalar parameter per sample
        elif est.shape[0] != p:
            raise ValueError(
                f"theta_hat of shape {est.shape} must have p={p} entries to broadcast over theta_true {truth.shape}"
            )
        else:
            est = est[None, :]
    if est.shape[1] != p:
        raise ValueError(f"theta_hat has {est.shape[1]} columns but theta_true has p={p}")
    if est.shape[0] not in (1, n):
        raise ValueError(f"inconsistent numbers of samples: theta_hat has {est.shape[0]}, theta_true has {n}")
    sq = (est - truth) ** 2
    if per_sample:
        return sq.mean(axis=1)
    return float(sq.mean())


def binned_explained_variance(
    theta: Any,
    covariates: Any,
    n_bins: int = 10,
    param_names: Sequence[str] | None = None,
    by: Any = None,
) -> pd.DataFrame:
    """Share of the variance of each coefficient that one covariate explains (η²).

    For covariate k the samples are cut into ``n_bins`` quantile bins of u_k, and

    .. math::  \\eta^2_{kj} = 1 - \\frac{\\sum_b \\sum_{i \\in b} (\\theta_{ij} - \\bar\\theta_{bj})^2}
                                      {\\sum_i (\\theta_{ij} - \\bar\\theta_j)^2}

    is the correlation ratio: the fraction of the spread of θ_j removed by knowing
    which bin of u_k a sample falls in. Unlike a correlation it also catches
    non-linear, non-monotone dependence. A covariate that shapes nothing scores about
    ``(n_bins - 1) / (n - 1)`` (the bias of η² under independence), not exactly 0.

    Parameters
    ----------
    theta : array-like of shape (n, p)
        Per-sample parameters.
    covariates : array-like of shape (n, K) or (n,), or a DataFrame
        The covariates; DataFrame column names label the rows of the result.
    n_bins : int, default=10
        Number of quantile bins per covariate (ties may merge bins; a covariate with
        fewer distinct values uses one bin per value).
    param_names : sequence of str, optional
        Column names for the p coefficients (default ``theta_0`` ...).
    by : array-like of shape (n,), optional
        A grouping (e.g. the true process). When given, the bins of u_k are formed
        *within* each group and the cells are (group, bin): the result is the share
        explained by the group and u_k together, so a covariate that acts only in
        interaction with the group (and scores near 0 alone) shows up.

    Returns
    -------
    pandas.DataFrame of shape (K, p + 1)
        One row per covariate, one column per coefficient plus ``"all"``: the
        variance-weighted share over all coefficients together.
    """
    th = check_array(theta, "theta", ndim=(1, 2))
    th = th[:, None] if th.ndim == 1 else th
    names = [str(c) for c in covariates.columns] if isinstance(covariates, pd.DataFrame) else None
    U = check_array(covariates, "covariates", ndim=(1, 2))
    U = U[:, None] if U.ndim == 1 else U
    check_consistent_length(theta=th, covariates=U)
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an int >= 2, got {n_bins!r}")
    p = th.shape[1]
    if param_names is not None and len(param_names) != p:
        raise ValueError(f"param_names has {len(param_names)} names but theta has p={p} columns")
    cols = [str(c) for c in param_names] if param_names is not None else [f"theta_{j}" for j in range(p)]
    if by is not None:
        by_codes = pd.factorize(_as_1d(by, "by"))[0]
        check_consistent_length(theta=th, by=by_codes)
    else:
        by_codes = np.zeros(th.shape[0], dtype=np.int64)
    total = ((th - th.mean(axis=0)) ** 2).sum(axis=0)
    rows = []
    for k in range(U.shape[1]):
        codes = np.zeros(th.shape[0], dtype=np.int64)
        for b in np.unique(by_codes):
            m = by_codes == b
            u = U[m, k]
            if np.unique(u).size <= n_bins:
                bins = pd.factorize(u)[0]
            else:
                bins = pd.qcut(u, q=int(n_bins), labels=False, duplicates="drop")
            codes[m] = b * (int(n_bins) + 1) + np.asarray(bins, dtype=np.int64)
        means = pd.DataFrame(th).groupby(codes).transform("mean").to_numpy()
        within = ((th - means) ** 2).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, 1.0 - within / total, np.nan)
            overall = 1.0 - within.sum() / total.sum() if total.sum() > 0 else np.nan
        rows.append(list(share) + [overall])
    index = pd.Index(names if names is not None else [f"u_{k}" for k in range(U.shape[1])], name="covariate")
    return pd.DataFrame(rows, index=index, columns=cols + ["all"])


# --------------------------------------------------------------------------- low rank and cost
def low_rank_floor(theta_true: Any, ranks: Any) -> np.ndarray:
    """Smallest parameter MSE any rank-q collection θ̂ᵢ = c + Qᵀzᵢ can reach, for each q.

    An estimate of that form (a shared offset ``c`` plus ``q`` basis vectors, as in
    low-rank personalized regression) lies in a q-dimensional affine subspace. The best
    such subspace for the true parameters is their principal subspace (Eckart–Young), so
    the floor is the variance left outside the first ``q`` principal components:

    .. math::  \\mathrm{floor}(q) = \\frac{1}{n p} \\sum_{m > q} s_m^2,

    with ``s_m`` the singular values of the column-centred ``theta_true``. It is the
    error of the PCA reconstruction with ``q`` components, i.e. what a rank-q model
    would get if it knew the true θ; ``floor(0)`` is the error of the best constant.

    Parameters
    ----------
    theta_true : array-like of shape (n, p)
        True per-sample parameters.
    ranks : int or array-like of int
        Ranks q >= 0 (q >= min(n, p) gives 0).

    Returns
    -------
    numpy.ndarray of shape (len(ranks),)
        The floor of :func:`parameter_mse` at each rank, in the order given.
    """
    truth = check_array(theta_true, "theta_true", ndim=2)
    q = np.atleast_1d(np.asarray(ranks))
    if q.ndim != 1 or q.size == 0 or not np.issubdtype(q.dtype, np.integer) or (q < 0).any():
        raise ValueError(f"ranks must be one or more ints >= 0, got {ranks!r}")
    s2 = np.linalg.svd(truth - truth.mean(axis=0), compute_uv=False) ** 2
    tail = np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]])  # tail[m] = sum of s2[m:]
    return tail[np.minimum(q, s2.size)] / truth.size
