"""Scores for models that adapt to the sample or cluster they serve.

Three questions come back in every notebook, and each has one function here:

* *How close are the estimated parameters to the true ones?*
  :func:`parameter_mse` compares per-sample parameters θ̂ᵢ with the simulator's θᵢ
  (Lengerich et al., NeurIPS 2019, report parameter-recovery error on simulations).
* *Which covariates shape the parameters?* :func:`binned_explained_variance` gives
  the share of each coefficient's spread explained by one covariate (a correlation
  ratio, so non-linear dependence counts too).
* *How well does a model serve each cluster, not just the population?*
  :func:`per_group_score` scores predictions separately in every cluster (site,
  patient, batch), the view the ARMED paper (Nguyen et al., TPAMI 2023) uses to show
  that a pooled model serves some clusters much worse than others.
* *How uncertain is a mean over folds or seeds?* :func:`mean_ci` gives the normal
  interval mean ± z·sd/√k that the ARMED paper reports (1.96·sd/√10 over 10 folds).

:func:`permutation_score_drop` measures how much a fitted model leans on a set of
columns (for example the confounded "probe" features of the spiral simulation) by
shuffling them jointly and recording the loss of score.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from perslib.utils import check_array, check_consistent_length, check_random_state

__all__ = [
    "parameter_mse",
    "binned_explained_variance",
    "per_group_score",
    "mean_ci",
    "permutation_score_drop",
    "METRICS",
]


# --------------------------------------------------------------------------- metrics
def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred))


def _auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    # AUROC is undefined when a group holds a single class: report NaN, not an error,
    # so that one small cluster does not abort a per-cluster table.
    if np.unique(y_true).size < 2:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, y_score))


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    ss_res = float(np.sum((y_true - y_pred) ** 2))
    ss_tot = float(np.sum((y_true - np.mean(y_true)) ** 2))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - ss_res / ss_tot


def _mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean((y_true - y_pred) ** 2))


#: Named metrics accepted by :func:`per_group_score` and :func:`permutation_score_drop`.
#: Each maps ``(y_true, y_pred) -> float``; ``"auroc"`` expects scores or
#: probabilities of the positive class as ``y_pred``; the others expect predictions.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy,
    "auroc": _auroc,
    "r2": _r2,
    "mse": _mse,
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
def mean_ci(values: Any, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and normal-approximation confidence interval over k repeated results.

    .. math::  \\bar v \\pm z_{(1+\\text{level})/2} \\; \\frac{s}{\\sqrt{k}}

    with ``s`` the sample standard deviation (``ddof=1``) of the k values. At
    ``level=0.95`` the multiplier is z = 1.96, the convention of the ARMED paper
    (Nguyen et al., TPAMI 2023), which reports mean ± 1.96·sd/√10 over 10 folds. With
    few values a t multiplier would be wider; we keep the paper's z for comparability.

    Parameters
    ----------
    values : array-like of shape (k,)
        One score per fold, seed or cluster; k >= 2.
    level : float, default=0.95
        Coverage of the interval, strictly between 0 and 1.

    Returns
    -------
    (mean, low, high) : tuple of float

    Raises
    ------
    ValueError
        For NaN, fewer than two values, or a level outside (0, 1).
    """
    v = check_array(values, "values", ndim=1)
    if v.size < 2:
        raise ValueError(f"values needs at least 2 entries for a standard deviation, got {v.size}")
    if not (isinstance(level, (float, int)) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    z = float(stats.norm.ppf(0.5 + float(level) / 2.0))
    mean = float(v.mean())
    half = z * float(v.std(ddof=1)) / np.sqrt(v.size)
    return mean, mean - half, mean + half


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


def power_law_fit(x: Any, y: Any) -> tuple[float, float]:
    """Least-squares fit of ``y ≈ c · x^b`` on log-log axes; returns ``(b, c)``.

    The exponent ``b`` is the slope of ``log y`` against ``log x``: for fit time against
    sample size, ``b ≈ 1`` means linear scaling and ``b ≈ 2`` quadratic.

    Parameters
    ----------
    x, y : array-like of shape (m,)
        Positive values, m >= 2 with at least two distinct ``x``.

    Returns
    -------
    exponent : float
    coefficient : float
    """
    xa = check_array(x, "x", ndim=1)
    ya = check_array(y, "y", ndim=1)
    check_consistent_length(x=xa, y=ya)
    for arr, name in ((xa, "x"), (ya, "y")):
        if (arr <= 0).any():
            raise ValueError(f"{name} must be positive for a log-log fit, got min {arr.min()!r}")
    if np.unique(xa).size < 2:
        raise ValueError("x needs at least two distinct values")
    slope, intercept = np.polyfit(np.log(xa), np.log(ya), 1)
    return float(slope), float(np.exp(intercept))


def _rss_bytes() -> int | None:
    """Resident set size of this process in bytes (psutil, else /proc), or None."""
    import os

    try:
        import psutil
    except ImportError:  # not a dependency of perslib; usually present with Jupyter
        psutil = None
    if psutil is not None:
        try:
            return int(psutil.Process().memory_info().rss)
        except (psutil.Error, OSError):
            pass
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_memory_increase(fn: Callable, *args: Any, interval: float = 0.002, **kwargs: Any) -> tuple[Any, int | None]:
    """Call ``fn(*args, **kwargs)`` and measure how far the process's resident memory rose.

    A background thread samples the resident set size (RSS) every ``interval`` seconds
    during the call; the result is the highest sample (including one after the call)
    minus the RSS just before it. What this measures, honestly:

    * memory the process *obtained from the operating system* during the call — NumPy,
      torch and interpreter allocations alike, unlike :mod:`tracemalloc`, which sees
      only Python-level allocations and misses torch tensors;
    * **not** memory the call reused from earlier, already freed allocations (the
      allocators keep freed blocks), so a second identical call often reads near 0,
      and the first call in a process includes one-off costs such as torch's lazy
      initialisation;
    * not short spikes between two samples.

    It is a lower bound on the call's working memory, good for spotting large
    differences (tens of MB and up); for the peak of a single fit in isolation run it
    in a fresh process, as ``benchmarks/personalized.py`` does.

    Parameters
    ----------
    fn : callable
        The function to measure.
    *args, **kwargs
        Passed to ``fn``.
    interval : float, default=0.002
        Seconds between RSS samples (> 0).

    Returns
    -------
    result : object
        What ``fn`` returned.
    increase : int or None
        Peak RSS increase in bytes (>= 0), or None where RSS cannot be read.
    """
    import threading
    import time

    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if not (isinstance(interval, (int, float)) and interval > 0):
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    base = _rss_bytes()
    if base is None:
        return fn(*args, **kwargs), None
    peak = [base]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes() or 0)
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        result = fn(*args, **kwargs)
        peak[0] = max(peak[0], _rss_bytes() or 0)
    finally:
        stop.set()
        thread.join()
    return result, max(peak[0] - base, 0)


__all__ += ["low_rank_floor", "power_law_fit", "peak_memory_increase"]
