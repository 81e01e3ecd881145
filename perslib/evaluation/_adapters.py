"""Adapters that let every model join one cross-validation table.

* :class:`WithCovariates` gives the personalized models (``covariates=``) the
  ``groups=`` interface of the cluster models;
* :class:`OnColumns` lets a model see only some columns of a shared feature table.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from perslib.evaluation._cv import _accepts

__all__ = ["OnColumns", "WithCovariates"]


class _Wrapper(BaseEstimator):
    """A meta-estimator whose type (classifier or regressor) is its inner estimator's."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = self.estimator.__sklearn_tags__().estimator_type
        return tags


class WithCovariates(_Wrapper):
    """Route some columns of a DataFrame ``X`` to an estimator's ``covariates=`` argument.

    The personalized models take ``fit(X, y, covariates=U)``; this wrapper gives them the
    ``fit(X, y, groups=g)`` / ``predict(X, groups=g)`` interface of the cluster models, so
    :func:`cross_validate_models` can compare both on the same folds. ``groups`` is
    accepted and ignored.

    Parameters
    ----------
    estimator : estimator
        Unfitted estimator with ``fit(X, y, covariates=...)`` and ``predict(X, covariates=...)``.
    covariates : sequence of str
        Columns of ``X`` passed as covariates (and removed from the features).

    Attributes
    ----------
    estimator_ : the fitted clone of ``estimator``
    """

    def __init__(self, estimator, covariates) -> None:
        self.estimator = estimator
        self.covariates = covariates

    def _split(self, X):
        if not hasattr(X, "columns"):
            raise ValueError("X must be a DataFrame whose columns include the covariates")
        cols = list(self.covariates)
        missing = [c for c in cols if c not in X.columns]
        if not cols or missing:
            raise ValueError(f"covariates must be non-empty columns of X; missing {missing}")
        return X.drop(columns=cols), X[cols]

    def fit(self, X, y, *, groups=None):
        """Fit ``estimator`` on the non-covariate columns, with the covariate columns as ``covariates``."""
        features, covs = self._split(X)
        self.estimator_ = clone(self.estimator).fit(features, y, covariates=covs)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X, *, groups=None):
        """Predictions of the fitted estimator (``groups`` is ignored)."""
        check_is_fitted(self, "estimator_")
        features, covs = self._split(X)
        return self.estimator_.predict(features, covariates=covs)


def _inner_has(name):
    return lambda self: hasattr(self.estimator, name)


class OnColumns(_Wrapper):
    """Fit and predict an estimator on some columns of a DataFrame ``X`` only.

    Lets models that should not see every column (e.g. cluster-level covariates) share
    one feature table with models that do, in one :func:`cross_validate_models` call.
    ``groups`` and any extra prediction arguments (ARMED's ``z=``) are passed through.

    Parameters
    ----------
    estimator : estimator
        Unfitted estimator.
    columns : sequence of str
        The columns of ``X`` it sees.

    Attributes
    ----------
    estimator_ : the fitted clone of ``estimator``
    """

    def __init__(self, estimator, columns) -> None:
        self.estimator = estimator
        self.columns = columns

    def _select(self, X):
        cols = list(self.columns)
        if not hasattr(X, "columns") or not cols or any(c not in X.columns for c in cols):
            raise ValueError(f"X must be a DataFrame with the columns {cols}")
        return X[cols]

    @staticmethod
    def _kw(method, groups, kwargs):
        return dict(kwargs, groups=groups) if groups is not None and _accepts(method, "groups") else dict(kwargs)

    def fit(self, X, y, *, groups=None):
        """Fit a clone of ``estimator`` on ``X[columns]`` (with ``groups`` if it takes them)."""
        est = clone(self.estimator)
        self.estimator_ = est.fit(self._select(X), y, **self._kw(est.fit, groups, {}))
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X, *, groups=None, **kwargs):
        """``estimator_.predict(X[columns], groups=groups, **kwargs)``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(self._select(X), **self._kw(self.estimator_.predict, groups, kwargs))

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X, *, groups=None, **kwargs):
        """``estimator_.predict_proba(X[columns], groups=groups, **kwargs)``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(self._select(X), **self._kw(self.estimator_.predict_proba, groups, kwargs))
