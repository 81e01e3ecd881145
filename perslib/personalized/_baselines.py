"""Baselines for personalized regression, with the same interface as the personalized estimators.

Every estimator here has ``fit(X, y, covariates=U)``, ``predict(X, covariates=U_new)``,
``predict_params(covariates) -> (coef (m, p), intercept (m,))`` and, after fitting,
per-training-sample ``coef_`` (n, p) and ``intercept_`` (n,), so that parameter-recovery
code treats all models alike.

* :class:`PopulationRegressor` / :class:`PopulationClassifier` — one GLM for everyone
  (ridge / L2 logistic regression); covariates are ignored.
* :class:`MixtureRegressor` — EM mixture of K linear regressions; θ_i is the component of
  highest responsibility. New samples are assigned by a majority vote of the components of
  their ``n_neighbors`` nearest training samples in standardized covariate space.
* :class:`VaryingCoefficientRegressor` / :class:`VaryingCoefficientClassifier` — θ_i =
  [1, u_i]·A, linear in the (standardized) covariates, fit by ridge on the interaction
  design x ⊗ [1, u].
* :class:`KNNLocalRegressor` — for every sample, a ridge regression fit on its k nearest
  neighbours (itself included) in standardized covariate space.

Covariates must be numeric here (categorical columns: one-hot encode them first).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from scipy.special import logsumexp
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from perslib._core.estimator import BinaryClassifierMixin, PerslibEstimator
from perslib._core.validation import (
    Instance,
    Interval,
    Options,
    check_array,
    check_consistent_length,
    check_n_columns,
    check_random_state,
)

__all__ = [
    "PopulationRegressor",
    "PopulationClassifier",
    "MixtureRegressor",
    "VaryingCoefficientRegressor",
    "VaryingCoefficientClassifier",
    "KNNLocalRegressor",
]


_ALPHA = [Interval(Real, 0, None)]


class _Base(PerslibEstimator):
    """Input checks and the shared predict code (not public)."""

    _requires_covariates = True

    def _check_fit(self, X, y, covariates, classifier=False):
        X, y = self._validate_fit(X, y, labels="binary" if classifier else None)
        U = None
        if self._requires_covariates:
            U = self._check_covariates(covariates, reset=True)
        elif covariates is not None:  # accepted and ignored, but a table of the wrong length is a mistake
            check_consistent_length(X=X, covariates=check_array(covariates, "covariates", ndim=(1, 2), allow_nan=True))
        check_consistent_length(X=X, y=y, covariates=U)
        return X, y, U

    def _check_covariates(self, covariates, n=None, *, reset=False) -> np.ndarray:
        self._check_column_names(covariates, reset=reset)
        U = check_array(covariates, "covariates", ndim=(1, 2))
        U = U.reshape(len(U), -1)
        if reset:
            self.n_covariates_ = U.shape[1]
        else:
            check_n_columns(U, self.n_covariates_, "covariates", "columns")
        if n is not None and len(U) != n:
            raise ValueError(f"inconsistent numbers of samples: X has {n}, covariates has {len(U)}")
        return U

    def _decision(self, X, covariates):
        X = self._check_X(X, reset=False)
        if not self._requires_covariates:
            return X @ self.population_coef_ + self.population_intercept_
        if covariates is None:
            raise ValueError("covariates is required: pass covariates=U of shape (n_samples, n_covariates)")
        coef, intercept = self.predict_params(self._check_covariates(covariates, len(X)))
        return np.einsum("ij,ij->i", X, coef) + intercept

    def predict(self, X, *, covariates=None):
        """Predictions (m,) for ``X`` (m, p) with ``covariates`` (m, K)."""
        return self._decision(X, covariates)


class _ProbaMixin(BinaryClassifierMixin):
    def decision_function(self, X, *, covariates=None):
        """Logits (m,) of ``classes_[1]``."""
        return self._decision(X, covariates)


# ------------------------------------------------------------------------- population
class PopulationRegressor(RegressorMixin, _Base):
    """One ridge regression for all samples (``alpha=0``: ordinary least squares).

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty (sklearn ``Ridge``; intercept unpenalized).

    Attributes
    ----------
    coef_ : ndarray (n, p); intercept_ : ndarray (n,)
        The population model tiled over the training samples.
    population_coef_ : ndarray (p,); population_intercept_ : float
    """

    _requires_covariates = False
    _parameter_constraints = {"alpha": _ALPHA}

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X, y, *, covariates=None):
        """Fit on ``X`` (n, p), ``y`` (n,); ``covariates`` is accepted and ignored."""
        X, y, _ = self._check_fit(X, y, covariates)
        model = Ridge(alpha=self.alpha).fit(X, y)
        self.population_coef_, self.population_intercept_ = model.coef_.astype(np.float64), float(model.intercept_)
        self.coef_ = np.tile(self.population_coef_, (len(X), 1))
        self.intercept_ = np.full(len(X), self.population_intercept_)
        return self

    def predict(self, X, *, covariates=None):
        """Predictions (m,) of the population model; ``covariates`` is accepted and ignored."""
        return self._decision(X, None)

    def predict_params(self, covariates):
        """The population model for each of the ``len(covariates)`` samples: (m, p), (m,)."""
        check_is_fitted(self, "coef_")
        m = len(covariates)
        return np.tile(self.population_coef_, (m, 1)), np.full(m, self.population_intercept_)


class PopulationClassifier(_ProbaMixin, ClassifierMixin, PopulationRegressor):  # noqa: D101
    """One L2 logistic regression (``C = 1/alpha``) for all samples; attributes as :class:`PopulationRegressor`."""

    def fit(self, X, y, *, covariates=None):
        """Fit on ``X`` (n, p), binary ``y`` (n,); ``covariates`` is accepted and ignored."""
        X, y, _ = self._check_fit(X, y, covariates, classifier=True)
        model = LogisticRegression(C=1.0 / max(self.alpha, 1e-12), max_iter=1000).fit(X, y)
        self.population_coef_, self.population_intercept_ = (
            model.coef_[0].astype(np.float64),
            float(model.intercept_[0]),
        )
        self.coef_ = np.tile(self.population_coef_, (len(X), 1))
        self.intercept_ = np.full(len(X), self.population_intercept_)
        return self


# ------------------------------------------------------------------------- mixture
class MixtureRegressor(RegressorMixin, _Base):
    """EM mixture of ``n_components`` linear regressions with per-component noise variance.

    θ_i is the component with the highest responsibility for sample i. New samples are
    assigned by a majority vote of the components of their ``n_neighbors`` nearest training
    samples in standardized covariate space (the mixture itself never looks at covariates).

    Parameters
    ----------
    n_components : int, default=3
    n_init : int, default=5
        EM restarts from random responsibilities; the best log-likelihood wins.
    max_iter : int, default=200
    tol : float, default=1e-6
        Stop when the mean log-likelihood improves by less.
    alpha : float, default=1e-6
        Tiny ridge in each weighted least-squares step (numerical safety).
    n_neighbors : int, default=10
    random_state : int, optional

    Attributes
    ----------
    components_coef_ : ndarray (K, p); components_intercept_ : (K,); sigma2_ : (K,); weights_ : (K,)
    responsibilities_ : ndarray (n, K); labels_ : ndarray (n,)
    coef_ : ndarray (n, p); intercept_ : ndarray (n,)
    log_likelihood_ : float
        Mean per-sample log-likelihood of the retained run.
    n_iter_ : int
        EM iterations of the retained run.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None)],
        "n_init": [Interval(Integral, 1, None)],
        "max_iter": [Interval(Integral, 1, None)],
        "tol": [Interval(Real, 0, None)],
        "alpha": _ALPHA,
        "n_neighbors": [Interval(Integral, 1, None)],
        "random_state": [Options(None), Interval(Integral, 0, None), Instance(np.random.Generator)],
    }

    def __init__(
        self, n_components=3, *, n_init=5, max_iter=200, tol=1e-6, alpha=1e-6, n_neighbors=10, random_state=None
    ):
        self.n_components = n_components
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def _em(self, Xa, y, rng):
        n, K = len(y), self.n_components
        resp = rng.dirichlet(np.ones(K), size=n)
        prev = -np.inf
        it = 0
        for it in range(1, self.max_iter + 1):  # noqa: B007 - the count is returned
            # M step: weighted least squares per component
            W = np.empty((K, Xa.shape[1]))
            s2 = np.empty(K)
            for k in range(K):
                r = resp[:, k]
                A = (Xa * r[:, None]).T @ Xa + self.alpha * np.eye(Xa.shape[1])
                W[k] = np.linalg.solve(A, (Xa * r[:, None]).T @ y)
                s2[k] = max(float(r @ (y - Xa @ W[k]) ** 2) / max(r.sum(), 1e-12), 1e-8)
            pi = np.clip(resp.mean(0), 1e-12, None)
            # E step
            logp = np.log(pi) - 0.5 * np.log(2 * np.pi * s2) - 0.5 * (y[:, None] - Xa @ W.T) ** 2 / s2
            norm = logsumexp(logp, axis=1)
            resp = np.exp(logp - norm[:, None])
            ll = float(norm.mean())
            if ll - prev < self.tol:
                break
            prev = ll
        return ll, W, s2, pi, resp, it

    def fit(self, X, y, *, covariates=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and ``covariates`` (n, K) (used only to assign new samples)."""
        X, y, U = self._check_fit(X, y, covariates)
        rng = check_random_state(self.random_state)
        Xa = np.hstack([X, np.ones((len(X), 1))])
        best = max((self._em(Xa, y, rng) for _ in range(self.n_init)), key=lambda r: r[0])
        self.log_likelihood_, W, self.sigma2_, self.weights_, self.responsibilities_, self.n_iter_ = best
        self.components_coef_, self.components_intercept_ = W[:, :-1], W[:, -1]
        self.labels_ = self.responsibilities_.argmax(1)
        self.coef_, self.intercept_ = self.components_coef_[self.labels_], self.components_intercept_[self.labels_]
        self.scaler_ = StandardScaler().fit(U)
        self.nn_ = NearestNeighbors(n_neighbors=min(self.n_neighbors, len(U))).fit(self.scaler_.transform(U))
        return self

    def predict_params(self, covariates):
        """Component of each new sample by a kNN vote on covariates: (m, p), (m,)."""
        check_is_fitted(self, "coef_")
        U = self._check_covariates(covariates)
        ind = self.nn_.kneighbors(self.scaler_.transform(U), return_distance=False)
        votes = np.apply_along_axis(np.bincount, 1, self.labels_[ind], minlength=self.n_components)
        lab = votes.argmax(1)
        return self.components_coef_[lab], self.components_intercept_[lab]


# ------------------------------------------------------------------- varying coefficient
class VaryingCoefficientRegressor(RegressorMixin, _Base):
    """Linear varying-coefficient model θ(u) = [1, u]·A, fit by ridge on the interaction design.

    Parameters
    ----------
    alpha : float, default=1e-3
        Ridge penalty on the interaction coefficients (covariates standardized inside).

    Attributes
    ----------
    A_ : ndarray of shape (K + 1, p + 1)
        Row 0 is the baseline; row k+1 the effect of covariate k (per unit of the
        *standardized* covariate); the last column is the intercept.
    coef_ : ndarray (n, p); intercept_ : ndarray (n,)
    """

    _parameter_constraints = {"alpha": _ALPHA}

    def __init__(self, alpha: float = 1e-3):
        self.alpha = alpha

    def _design(self, X, U):
        Ua = np.hstack([np.ones((len(U), 1)), self.scaler_.transform(U)])
        Xa = np.hstack([X, np.ones((len(X), 1))])
        return (Xa[:, None, :] * Ua[:, :, None]).reshape(len(X), -1), Ua  # column (k, d) = u_k x_d

    def _fit_design(self, Z, y):
        model = Ridge(alpha=self.alpha, fit_intercept=False).fit(Z, y)
        return model.coef_

    def fit(self, X, y, *, covariates=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and ``covariates`` (n, K)."""
        X, y, U = self._check_fit(X, y, covariates, classifier=isinstance(self, ClassifierMixin))
        self.scaler_ = StandardScaler().fit(U)
        Z, _ = self._design(X, U)
        self.A_ = np.asarray(self._fit_design(Z, y)).reshape(U.shape[1] + 1, X.shape[1] + 1)
        self.coef_, self.intercept_ = self.predict_params(U)
        return self

    def predict_params(self, covariates):
        """θ(u) = [1, u]·A for each row of ``covariates``: (m, p), (m,)."""
        check_is_fitted(self, "A_")
        U = self._check_covariates(covariates)
        theta = np.hstack([np.ones((len(U), 1)), self.scaler_.transform(U)]) @ self.A_
        return theta[:, :-1], theta[:, -1]


class VaryingCoefficientClassifier(_ProbaMixin, ClassifierMixin, VaryingCoefficientRegressor):
    """Logistic varying-coefficient model (L2 logistic regression on the interaction design, C = 1/alpha)."""

    def __init__(self, alpha: float = 1e-2):
        self.alpha = alpha

    def _fit_design(self, Z, y):
        return LogisticRegression(C=1.0 / max(self.alpha, 1e-12), fit_intercept=False, max_iter=2000).fit(Z, y).coef_[0]


# ------------------------------------------------------------------------- kNN local
class KNNLocalRegressor(RegressorMixin, _Base):
    """Local ridge regressions: θ_i from the ``n_neighbors`` nearest samples of i in covariate space.

    Covariates are standardized; the neighbourhood of a training sample includes itself.
    Each local fit is sklearn's ``Ridge(alpha)`` (intercept unpenalized), solved for all
    samples at once as batched (p × p) systems. New samples get a local fit on their
    nearest training samples.

    Parameters
    ----------
    n_neighbors : int, default=50
    alpha : float, default=1.0

    Attributes
    ----------
    coef_ : ndarray (n, p); intercept_ : ndarray (n,)
    """

    _parameter_constraints = {"n_neighbors": [Interval(Integral, 1, None)], "alpha": _ALPHA}

    def __init__(self, n_neighbors: int = 50, *, alpha: float = 1.0):
        self.n_neighbors = n_neighbors
        self.alpha = alpha

    def _local(self, ind):
        Xn, yn = self.X_[ind], self.y_[ind]  # (m, k, p), (m, k)
        xm, ym = Xn.mean(1, keepdims=True), yn.mean(1, keepdims=True)
        Xc, yc = Xn - xm, yn - ym
        A = np.einsum("mkp,mkq->mpq", Xc, Xc) + self.alpha * np.eye(Xn.shape[2])
        coef = np.linalg.solve(A, np.einsum("mkp,mk->mp", Xc, yc)[..., None])[..., 0]
        return coef, ym[:, 0] - np.einsum("mp,mp->m", xm[:, 0], coef)

    def fit(self, X, y, *, covariates=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and ``covariates`` (n, K)."""
        X, y, U = self._check_fit(X, y, covariates)
        self.X_, self.y_ = X, y
        self.scaler_ = StandardScaler().fit(U)
        self.nn_ = NearestNeighbors(n_neighbors=min(self.n_neighbors, len(U))).fit(self.scaler_.transform(U))
        self.coef_, self.intercept_ = self.predict_params(U)
        return self

    def predict_params(self, covariates):
        """Local ridge fit on each row's nearest training samples: (m, p), (m,)."""
        check_is_fitted(self, "nn_")
        U = self._check_covariates(covariates)
        ind = self.nn_.kneighbors(self.scaler_.transform(U), return_distance=False)
        return self._local(ind)
