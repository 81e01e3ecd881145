"""Cross-validation of several estimators on clustered data: per-fold scores and intervals.

The ARMED notebooks compare half a dozen models on the same folds, on *seen* clusters
(every cluster in both the training and the test folds: stratify by label x cluster) and
on *unseen* ones (whole clusters held out: ``GroupKFold``). Three small functions cover
that protocol:

* :func:`label_cluster_strata` — the label x cluster strata for ``StratifiedKFold``;
* :func:`cross_validate_models` — fit every model on every fold (cluster labels passed
  as ``groups=`` to the estimators that take them), score the test fold, and return a
  tidy table with one row per (fold, model, metric); extra predictions from the same
  fitted model (e.g. ARMED with ``z="zero"``) are "variants", and a callback can add
  numbers computed from each fitted model (feature importances, random effects);
* :func:`summarize_folds` — mean and 95% interval over folds per model and metric
  (:func:`perslib.evaluation.mean_ci`: mean ± 1.96·sd/√k, the ARMED paper's convention).
  That interval treats fold scores as independent and is too narrow for few, correlated
  folds; :func:`perslib.evaluation.corrected_summary` gives the same table with the
  corrected resampled t interval.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score, roc_auc_score

from perslib._core.validation import check_consistent_length
from perslib.evaluation._scores import mean_ci

__all__ = ["cross_validate_models", "label_cluster_strata", "summarize_folds"]

#: Metrics computed per task; "fit_time" (seconds) is added for every fitted model.
CLASSIFICATION_METRICS = ("accuracy", "auroc")
REGRESSION_METRICS = ("r2", "mse")


def label_cluster_strata(y: Any, groups: Any) -> np.ndarray:
    """One stratum per (cluster, label) pair, for ``StratifiedKFold(...).split(X, strata)``.

    Stratifying on these keeps every cluster, with its own class balance, in every
    training and test fold (as far as each stratum's size allows).

    Parameters
    ----------
    y : array-like of shape (n,)
        Class labels.
    groups : array-like of shape (n,)
        Cluster labels.

    Returns
    -------
    numpy.ndarray of shape (n,), dtype object
        Strings ``"<cluster>|<label>"``.
    """
    ya, ga = np.asarray(y), np.asarray(groups)
    if ya.ndim != 1 or ga.ndim != 1:
        raise ValueError(f"y and groups must be 1-dimensional, got shapes {ya.shape} and {ga.shape}")
    check_consistent_length(y=ya, groups=ga)
    return np.asarray([f"{g}|{c}" for g, c in zip(ga, ya)], dtype=object)


def _accepts(method: Callable, name: str) -> bool:
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _rows(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _scores(estimator, X, y, groups, task: str, kwargs: dict) -> dict:
    """Test-fold scores of one fitted estimator (``kwargs`` go to predict / predict_proba)."""
    pass_groups = groups is not None and _accepts(estimator.predict, "groups")
    kw = {"groups": groups, **kwargs} if pass_groups else dict(kwargs)  # a variant may override groups
    with warnings.catch_warnings():  # held-out clusters: the estimators say so on every call
        warnings.filterwarnings("ignore", message=".*seen in training.*", category=UserWarning)
        pred = np.asarray(estimator.predict(X, **kw))
        if task == "regression":
            return {"r2": float(r2_score(y, pred)), "mse": float(mean_squared_error(y, pred))}
        out = {"accuracy": float(accuracy_score(y, pred))}
        if hasattr(estimator, "predict_proba"):
            proba = np.asarray(estimator.predict_proba(X, **kw))
            classes = list(getattr(estimator, "classes_", np.unique(y)))
            if len(classes) == 2 and len(np.unique(y)) == 2:
                out["auroc"] = float(roc_auc_score(np.asarray(y) == classes[1], proba[:, 1]))
        return out


def _run_one(fold, name, estimator, X, y, groups, train, test, task, variants, on_fold):
    """Fit one model on one fold; return its rows (and those of its variants)."""
    Xtr, Xte, ytr, yte = _rows(X, train), _rows(X, test), y[train], y[test]
    gtr = None if groups is None else groups[train]
    gte = None if groups is None else groups[test]
    fit_kw = {"groups": gtr} if gtr is not None and _accepts(estimator.fit, "groups") else {}
    t0 = time.perf_counter()
    estimator.fit(Xtr, ytr, **fit_kw)
    rows = [(fold, name, "fit_time", time.perf_counter() - t0)]
    for label, kwargs in [(name, {})] + [(v, kw) for v, (base, kw) in variants.items() if base == name]:
        rows += [(fold, label, m, v) for m, v in _scores(estimator, Xte, yte, gte, task, kwargs).items()]
    if on_fold is not None:
        extra = on_fold(name, estimator, train, test) or {}
        rows += [(fold, name, str(m), float(v)) for m, v in extra.items()]
    return rows, estimator


def cross_validate_models(
    models: Mapping[str, Any],
    X: Any,
    y: Any,
    groups: Any = None,
    cv: Any = 5,
    *,
    stratify: Any = None,
    task: str = "auto",
    variants: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    on_fold: Callable[[str, Any, np.ndarray, np.ndarray], Mapping[str, float]] | None = None,
    n_jobs: int | None = 1,
    return_estimators: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict]:
    """Fit every model on every cross-validation fold and score it on the test fold.

    Each model is cloned (``sklearn.base.clone``) for each fold, so the mapping's
    estimators stay unfitted. Estimators whose ``fit`` / ``predict`` take ``groups``
    get the cluster labels of the fold; others (plain scikit-learn estimators) are
    called without them. Warnings about clusters not seen in training are silenced
    (on held-out clusters every call would raise one).

    Parameters
    ----------
    models : mapping of str to estimator
        Model name -> unfitted estimator.
    X : array-like or DataFrame of shape (n, p)
    y : array-like of shape (n,)
    groups : array-like of shape (n,), optional
        Cluster labels, given to the splitter and to the estimators.
    cv : int, splitter or iterable of (train, test) index arrays, default=5
        An int means ``StratifiedKFold(cv)`` for classification and ``KFold(cv)`` for
        regression (unshuffled, as in scikit-learn). A splitter is called as
        ``cv.split(X, stratify if given else y, groups)``, so ``StratifiedKFold`` with
        ``stratify=label_cluster_strata(y, groups)`` stratifies by label x cluster and
        ``GroupKFold`` holds out whole clusters.
    stratify : array-like of shape (n,), optional
        Labels the splitter stratifies on instead of ``y``.
    task : {"auto", "classification", "regression"}, default="auto"
        Which metrics to compute: accuracy and AUROC (binary, from ``predict_proba``)
        or R² and MSE. "auto" picks classification when the estimators are classifiers.
    variants : mapping of str to (str, mapping), optional
        Extra predictions of a fitted model: ``{"ARMED, z = 0": ("ARMED", {"z": "zero"})}``
        scores ``predict(X, groups=..., z="zero")`` of the fitted "ARMED" model under the
        name "ARMED, z = 0" (no extra fit). A ``"groups"`` entry replaces the test
        fold's cluster labels (``{"groups": None}``: predict as if they were unknown).
    on_fold : callable, optional
        ``on_fold(name, fitted_estimator, train_idx, test_idx) -> {metric: value}``,
        called once per model and fold; its numbers join the table (e.g. feature
        importances computed on the training fold).
    n_jobs : int or None, default=1
        Fit (fold, model) pairs in parallel with joblib processes (-1: all cores). The
        results do not depend on it for estimators seeded with ``random_state``.
    return_estimators : bool, default=False
        Also return the fitted estimators.

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``fold`` (int), ``model``, ``metric``, ``value``; one row per fold, model
        (or variant) and metric, including ``fit_time`` in seconds per fitted model.
    estimators : dict, only with ``return_estimators=True``
        ``{(fold, model name): fitted estimator}``; the folds' index arrays are under
        ``("splits", fold)`` as ``(train_idx, test_idx)``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping of name -> estimator")
    variants = dict(variants or {})
    for v, spec in variants.items():
        if not (isinstance(spec, tuple) and len(spec) == 2 and spec[0] in models and isinstance(spec[1], Mapping)):
            raise ValueError(f"variants[{v!r}] must be (model name in models, dict of predict arguments), got {spec!r}")
        if v in models:
            raise ValueError(f"variant name {v!r} is also a model name")
    ya = np.asarray(y)
    if ya.ndim != 1:
        raise ValueError(f"y must be 1-dimensional, got shape {ya.shape}")
    ga = None if groups is None else np.asarray(groups)
    n = check_consistent_length(X=X, y=ya, **({} if ga is None else {"groups": ga}))
    if task == "auto":
        ests = list(models.values())
        task = (
            "classification"
            if all(map(is_classifier, ests))
            else "regression"
            if all(map(is_regressor, ests))
            else None
        )
        if task is None:
            raise ValueError("task='auto' needs all models to be classifiers or all regressors; pass task=")
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'auto', 'classification' or 'regression', got {task!r}")
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        cv = StratifiedKFold(int(cv)) if task == "classification" else KFold(int(cv))
    if isinstance(cv, (str, bytes)):
        raise ValueError(f"cv must be an int, a splitter with .split() or an iterable of (train, test), got {cv!r}")  # noqa: TRY004
    if hasattr(cv, "split"):
        target = ya if stratify is None else np.asarray(stratify)
        with warnings.catch_warnings():  # StratifiedKFold & co. say that they ignore groups
            warnings.filterwarnings("ignore", message=".*groups parameter is ignored.*", category=UserWarning)
            splits = list(cv.split(np.zeros((n, 1)), target, ga))
    elif isinstance(cv, Iterable):
        try:
            splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
        except (TypeError, ValueError) as err:
            raise ValueError(f"cv must yield (train, test) index pairs: {err}") from None
    else:
        raise ValueError(f"cv must be an int, a splitter with .split() or an iterable of (train, test), got {cv!r}")
    if not splits:
        raise ValueError("cv produced no folds")

    jobs = [(f, name, clone(est), tr, te) for f, (tr, te) in enumerate(splits) for name, est in models.items()]
    args = (X, ya, ga)
    if n_jobs in (None, 1):
        results = [_run_one(f, name, est, *args, tr, te, task, variants, on_fold) for f, name, est, tr, te in jobs]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(
            delayed(_run_one)(f, name, est, *args, tr, te, task, variants, on_fold) for f, name, est, tr, te in jobs
        )
    frame = pd.DataFrame([r for rows, _ in results for r in rows], columns=["fold", "model", "metric", "value"])
    order = list(models) + list(variants)
    frame["model"] = pd.Categorical(frame["model"], categories=order, ordered=True)
    frame = frame.sort_values(["model", "metric", "fold"], kind="stable").reset_index(drop=True)
    frame["model"] = frame["model"].astype(str)
    if not return_estimators:
        return frame
    fitted = {(f, name): est for (f, name, *_), (_, est) in zip(jobs, results)}
    fitted.update({("splits", f): split for f, split in enumerate(splits)})
    return frame, fitted


def summarize_folds(scores: pd.DataFrame, level: float = 0.95, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean and normal-approximation interval over folds of every (model, metric) in a score table.

    The interval is :func:`perslib.evaluation.mean_ci` (mean ± z·sd/√k), which assumes
    the k fold scores are independent. They are not (the training sets overlap), so with
    few folds this interval is too narrow. Prefer
    :func:`perslib.evaluation.corrected_summary` (same layout, Nadeau–Bengio corrected
    resampled t interval with the folds' :math:`n_\\text{test}/n_\\text{train}`); this
    function is kept for backward compatibility and the ARMED paper's convention.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`cross_validate_models` (columns ``fold, model, metric, value``).
    level : float, default=0.95
        Coverage of the normal-approximation interval (:func:`perslib.evaluation.mean_ci`).
    metrics : iterable of str, optional
        Keep only these metrics.

    Returns
    -------
    pandas.DataFrame
        Index ``(model, metric)`` in the table's order; columns ``mean``, ``low``,
        ``high``, ``sd`` (``ddof=1``) and ``n_folds``.
    """
    need = {"fold", "model", "metric", "value"}
    if not isinstance(scores, pd.DataFrame) or not need <= set(scores.columns):
        raise ValueError(f"scores must be a DataFrame with columns {sorted(need)} (from cross_validate_models)")
    data = scores if metrics is None else scores[scores["metric"].isin(list(metrics))]
    rows = []
    for (model, metric), part in data.groupby(["model", "metric"], sort=False):
        values = part["value"].to_numpy(float)
        mean, low, high = mean_ci(values, level) if len(values) >= 2 else (float(values.mean()), np.nan, np.nan)
        rows.append(
            {
                "model": model,
                "metric": metric,
                "mean": mean,
                "low": low,
                "high": high,
                "sd": float(values.std(ddof=1)) if len(values) >= 2 else np.nan,
                "n_folds": len(values),
            }
        )
    columns = ["model", "metric", "mean", "low", "high", "sd", "n_folds"]
    return pd.DataFrame(rows, columns=columns).set_index(["model", "metric"])
