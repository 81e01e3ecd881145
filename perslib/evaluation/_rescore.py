"""Score the models of a finished cross-validation on other test data of the same rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from perslib._core.validation import check_consistent_length
from perslib.evaluation._cv import _rows, _scores

__all__ = ["score_fitted"]


def score_fitted(
    fitted: Mapping[Any, Any],
    X: Any,
    y: Any,
    groups: Any = None,
    *,
    models: Sequence[str] | None = None,
    variants: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
) -> pd.DataFrame:
    """Score fold models already fitted by :func:`cross_validate_models` on new test data.

    The question "what if the held-out rows looked different?" — a confounder whose link to
    the outcome is reversed in new clusters, a shifted measurement — needs no new fits:
    each fold's fitted model predicts its own test rows, taken from ``X`` (same rows, same
    order as in the cross-validation, other values). Scores are those of
    :func:`cross_validate_models` (accuracy and AUROC, or R² and MSE).

    Parameters
    ----------
    fitted : mapping
        The second output of ``cross_validate_models(..., return_estimators=True)``:
        ``{(fold, model): estimator}`` and ``{("splits", fold): (train_idx, test_idx)}``.
    X : array-like or DataFrame of shape (n, p)
        The rows of the cross-validation, as the test folds should see them.
    y : array-like of shape (n,)
        Outcomes of those rows.
    groups : array-like of shape (n,), optional
        Cluster labels, passed to estimators whose ``predict`` takes ``groups``.
    models : sequence of str, optional
        The fitted models to score (default: all).
    variants : mapping of str to (str, mapping), optional
        Extra predictions of a fitted model, as in :func:`cross_validate_models`.

    Returns
    -------
    pandas.DataFrame
        Columns ``fold``, ``model``, ``metric``, ``value``: one row per fold, model (or
        variant) and metric.

    Raises
    ------
    ValueError
        When ``fitted`` holds no folds, ``models`` or ``variants`` name a model it lacks,
        or ``X``, ``y``, ``groups`` differ in length or are shorter than a fold's indices.
    """
    if not isinstance(fitted, Mapping):
        raise ValueError("fitted must be the estimators mapping of cross_validate_models(return_estimators=True)")
    folds = sorted(k[1] for k in fitted if isinstance(k, tuple) and k[0] == "splits")
    if not folds:
        raise ValueError("fitted holds no ('splits', fold) entries: pass return_estimators=True's mapping")
    names = list(dict.fromkeys(k[1] for k in fitted if isinstance(k, tuple) and k[0] != "splits"))
    models = names if models is None else list(models)
    unknown = [m for m in models if m not in names]
    if unknown:
        raise ValueError(f"models {unknown} are not in fitted (it has {names})")
    variants = dict(variants or {})
    for v, spec in variants.items():
        if not (isinstance(spec, tuple) and len(spec) == 2 and spec[0] in names and isinstance(spec[1], Mapping)):
            raise ValueError(
                f"variants[{v!r}] must be (a model name in fitted, dict of predict arguments), got {spec!r}"
            )
    ya = np.asarray(y)
    ga = None if groups is None else np.asarray(groups)
    n = check_consistent_length(X=X, y=ya, **({} if ga is None else {"groups": ga}))
    rows = []
    for f in folds:
        test = np.asarray(fitted[("splits", f)][1])
        if test.size and test.max() >= n:
            raise ValueError(f"fold {f} tests row {int(test.max())}, but X has {n} rows: pass the same rows")
        Xte, yte, gte = _rows(X, test), ya[test], None if ga is None else ga[test]
        for name in models:
            est = fitted[(f, name)]
            task = "classification" if is_classifier(est) else "regression"
            for label, kwargs in [(name, {})] + [(v, kw) for v, (base, kw) in variants.items() if base == name]:
                rows += [(f, label, m, v) for m, v in _scores(est, Xte, yte, gte, task, kwargs).items()]
    return pd.DataFrame(rows, columns=["fold", "model", "metric", "value"])
