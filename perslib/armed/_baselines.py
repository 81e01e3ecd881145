"""Baselines for ARMED, with the same ``fit(X, y, groups=g)`` / ``predict(X, groups=g)`` API.

* :class:`perslib.mlp.MLPClassifier` / :class:`~perslib.mlp.MLPRegressor` — the
  conventional pooled network (they accept and ignore ``groups``).
* :class:`ClusterInputMLPClassifier` / :class:`ClusterInputMLPRegressor` — the cluster's
  one-hot vector concatenated to the (standardized) inputs; unseen clusters get the zero
  vector (with a ``UserWarning``).
* :class:`DomainAdversarialMLPClassifier` / ``Regressor`` — ARMED without random effects
  (``random_effects=False``): the FE network and its adversary only.
* :class:`MixedEffectsMLPClassifier` / ``Regressor`` — ARMED without the adversary
  (``adversary=False``).
* :class:`MixedLMRegressor` — statsmodels' linear mixed model (random intercept, optional
  random slopes); predicts fixed effects + BLUPs for seen clusters, fixed effects only for
  unseen ones.
* :class:`BayesMixedGLMClassifier` — statsmodels' ``BinomialBayesMixedGLM`` (logistic,
  random intercept) fitted by variational Bayes; posterior-mean intercepts for seen
  clusters, none for unseen ones.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from perslib._core.estimator import BinaryClassifierMixin, PerslibEstimator, init_with_defaults, standardize_target
from perslib._core.validation import (
    Instance,
    Interval,
    Options,
    check_binary_labels,
    check_consistent_length,
    check_groups,
    check_random_state,
    check_target,
    sorted_unique,
)
from perslib.armed._estimators import ARMEDClassifier, ARMEDRegressor
from perslib.armed._unseen import one_hot
from perslib.mlp import MLPClassifier, MLPRegressor, _BaseMLPEstimator

__all__ = [
    "BayesMixedGLMClassifier",
    "ClusterInputMLPClassifier",
    "ClusterInputMLPRegressor",
    "DomainAdversarialMLPClassifier",
    "DomainAdversarialMLPRegressor",
    "MixedEffectsMLPClassifier",
    "MixedEffectsMLPRegressor",
    "MixedLMRegressor",
]


# -- ARMED variants with other defaults ----------------------------------------------------
def _variant(base, name: str, doc: str, **defaults):
    """Subclass of ``base`` whose ``__init__`` has other defaults (visible to get_params/clone)."""
    __init__ = init_with_defaults(base.__init__, **defaults)
    return type(
        name,
        (base,),
        {
            "__init__": __init__,
            "__doc__": doc,
            "__module__": __name__,
            "__qualname__": name,
        },
    )


DomainAdversarialMLPClassifier = _variant(
    ARMEDClassifier,
    "DomainAdversarialMLPClassifier",
    "Domain-adversarial MLP classifier: :class:`ARMEDClassifier` with ``random_effects=False`` by default.",
    random_effects=False,
)
DomainAdversarialMLPRegressor = _variant(
    ARMEDRegressor,
    "DomainAdversarialMLPRegressor",
    "Domain-adversarial MLP regressor: :class:`ARMEDRegressor` with ``random_effects=False`` by default.",
    random_effects=False,
)
MixedEffectsMLPClassifier = _variant(
    ARMEDClassifier,
    "MixedEffectsMLPClassifier",
    "Mixed-effects MLP classifier without adversary: :class:`ARMEDClassifier` with ``adversary=False`` by default.",
    adversary=False,
)
MixedEffectsMLPRegressor = _variant(
    ARMEDRegressor,
    "MixedEffectsMLPRegressor",
    "Mixed-effects MLP regressor without adversary: :class:`ARMEDRegressor` with ``adversary=False`` by default.",
    adversary=False,
)


# -- cluster-input MLP -------------------------------------------------------------------
class _ClusterInputBase(_BaseMLPEstimator):
    """Shares the MLP estimators' parameters (and so their __init__); adds one-hot cluster inputs."""

    _inner_cls = MLPClassifier
    _requires_groups = True

    def _augment(self, X, groups, *, reset: bool) -> np.ndarray:
        Xa = self._check_X(X, reset=reset)
        if reset:
            g = check_groups(groups, len(Xa))
            self.groups_ = sorted_unique(g)
            self.scaler_ = StandardScaler().fit(Xa) if self.standardize else None
        else:
            g = None if groups is None else check_groups(groups, len(Xa), fitting=False)
        codes = np.full(len(Xa), -1) if g is None else pd.Index(self.groups_).get_indexer(g)
        if not reset and (codes < 0).any():
            warnings.warn(
                f"{type(self).__name__}: {int((codes < 0).sum())} sample(s) without a cluster seen in training; "
                "their cluster input is the zero vector",
                UserWarning,
                stacklevel=3,
            )
        Xs = self.scaler_.transform(Xa) if self.scaler_ is not None else Xa
        return np.hstack([Xs, one_hot(codes, len(self.groups_))])

    def _fit_inner(self, Z, target):
        params = {k: v for k, v in self.get_params().items() if k not in ("standardize", "hidden")}
        self.estimator_ = self._inner_cls(self.hidden, standardize=False, **params).fit(Z, target)
        self.history_ = self.estimator_.history_
        self.n_epochs_ = self.estimator_.n_epochs_
        return self

    def fixed_effects_estimator(self):
        """For :func:`perslib.armed.feature_importance`: the network with the cluster input at zero."""
        check_is_fitted(self, "estimator_")
        model, K = self.estimator_.model_, len(self.groups_)

        def fn(x):
            return model(torch.cat([x, x.new_zeros(len(x), K)], dim=1))[:, 0]

        names = getattr(self, "feature_names_in_", None)
        names = list(names) if names is not None else [f"x{j}" for j in range(self.n_features_in_)]
        return fn, self.scaler_, self.estimator_.device_, names, isinstance(self.estimator_, MLPClassifier)


class ClusterInputMLPClassifier(ClassifierMixin, _ClusterInputBase):
    """MLP classifier on ``[standardized X, one-hot cluster]``; parameters as :class:`perslib.mlp.MLPClassifier`.

    Clusters not seen in training get the zero cluster vector (with a ``UserWarning``).
    """

    _inner_cls = MLPClassifier

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), labels ``y`` (n,) and cluster labels ``groups`` (n,)."""
        self._validate_params()
        Z = self._augment(X, groups, reset=True)
        self.classes_, encoded = check_binary_labels(y, binary=False)
        check_consistent_length(X=Z, y=encoded)
        return self._fit_inner(Z, self.classes_[encoded])

    def predict_proba(self, X, *, groups=None) -> np.ndarray:
        """Class probabilities (n, n_classes)."""
        Z = self._augment(X, groups, reset=False)
        return self.estimator_.predict_proba(Z)

    def predict(self, X, *, groups=None) -> np.ndarray:
        """Most probable class (n,)."""
        Z = self._augment(X, groups, reset=False)
        return self.estimator_.predict(Z)


class ClusterInputMLPRegressor(RegressorMixin, _ClusterInputBase):
    """MLP regressor on ``[standardized X, one-hot cluster]``; parameters as :class:`perslib.mlp.MLPRegressor`.

    With ``standardize=True`` the target is standardized too (``y_mean_``, ``y_scale_``).
    """

    _inner_cls = MLPRegressor

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and cluster labels ``groups`` (n,)."""
        self._validate_params()
        Z = self._augment(X, groups, reset=True)
        y = check_target(y)
        check_consistent_length(X=Z, y=y)
        target, self.y_mean_, self.y_scale_ = standardize_target(y, self.standardize)
        return self._fit_inner(Z, target)

    def predict(self, X, *, groups=None) -> np.ndarray:
        """Predictions (n,); unseen or missing groups use the zero cluster vector."""
        Z = self._augment(X, groups, reset=False)
        return self.estimator_.predict(Z) * self.y_scale_ + self.y_mean_


# -- statsmodels mixed models --------------------------------------------------------------
class _StatsmodelsBase(PerslibEstimator):
    """Input checks shared by the statsmodels wrappers (not public)."""

    _requires_groups = True
    _unsaved = ("result_",)  # statsmodels results are no plain data; the fitted numbers are kept

    def _check_fit(self, X, y, groups, *, classifier: bool):
        Xa, y = self._validate_fit(X, y, labels="binary" if classifier else None)
        names = getattr(self, "feature_names_in_", None)
        self.names_ = [str(c) for c in names] if names is not None else [f"x{j}" for j in range(Xa.shape[1])]
        g = check_groups(groups, len(Xa))
        self.groups_ = sorted_unique(g)
        n_fixed = Xa.shape[1] + 1
        if len(Xa) < n_fixed + 2:
            raise ValueError(
                f"{type(self).__name__} needs at least {n_fixed + 2} samples for {n_fixed} fixed effects, got {len(Xa)} sample(s)"
            )
        if len(self.groups_) < 2:
            raise ValueError(f"groups must hold at least 2 clusters for a mixed model, got {len(self.groups_)}")
        return Xa, y, pd.Index(self.groups_).get_indexer(g)

    def _seen(self, groups, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of ``groups`` among the fitted clusters (-1 if unseen) and the seen mask.

        Samples of clusters not seen in training (or all, when ``groups`` is None) get
        fixed effects only, with a warning that counts them.
        """
        codes = (
            np.full(n, -1)
            if groups is None
            else pd.Index(self.groups_).get_indexer(check_groups(groups, n, fitting=False))
        )
        seen = codes >= 0
        if not seen.all():
            warnings.warn(
                f"{type(self).__name__}: {int((~seen).sum())} sample(s) without a cluster seen in training; fixed effects only",
                UserWarning,
                stacklevel=3,
            )
        return codes, seen


class MixedLMRegressor(RegressorMixin, _StatsmodelsBase):
    """Linear mixed model (statsmodels ``MixedLM``): random intercept, optional random slopes.

    Parameters
    ----------
    random_slopes : sequence of str or int, or "all", optional
        Features (names, or column positions) with a random slope per cluster.
    reml : bool, default=True
    method : str or list, optional
        Optimiser(s) passed to ``MixedLMResults.fit`` (statsmodels' default when None).

    Attributes
    ----------
    result_ : statsmodels MixedLMResults
    fe_params_ : Series (``Intercept`` and one coefficient per feature)
    random_effects_ : DataFrame (clusters x random effects) of BLUPs
    random_effect_sd_ : Series, estimated s.d. of each random effect
    residual_sd_ : float
    """

    _parameter_constraints = {
        "random_slopes": [Options(None, "all"), Instance(tuple, list)],
        "reml": [Options(True, False)],
        "method": [Options(None), Instance(str, tuple, list)],
    }

    def __init__(self, random_slopes=None, *, reml: bool = True, method=None) -> None:
        self.random_slopes = random_slopes
        self.reml = reml
        self.method = method

    def _slope_columns(self, names):
        if self.random_slopes is None:
            return []
        if isinstance(self.random_slopes, str):
            if self.random_slopes != "all":
                raise ValueError(f"random_slopes must be 'all' or a list of features, got {self.random_slopes!r}")
            return list(range(len(names)))
        cols = []
        for s in self.random_slopes:
            if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
                cols.append(int(s))
            elif str(s) in names:
                cols.append(names.index(str(s)))
            else:
                raise ValueError(f"random_slopes: unknown feature {s!r}; features are {names}")
        return cols

    def _designs(self, Xa):
        exog = np.column_stack([np.ones(len(Xa)), Xa])
        exog_re = np.column_stack([np.ones(len(Xa)), Xa[:, self.slope_columns_]])
        return exog, exog_re

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and cluster labels ``groups`` (n,)."""
        import statsmodels.api as sm

        Xa, y, codes = self._check_fit(X, y, groups, classifier=False)
        names = self.names_
        self.slope_columns_ = self._slope_columns(names)
        exog, exog_re = self._designs(Xa)
        fe_names = ["Intercept", *names]
        re_names = ["Group", *[names[j] for j in self.slope_columns_]]
        model = sm.MixedLM(
            y,
            pd.DataFrame(exog, columns=fe_names),
            groups=codes,  # integer codes: statsmodels sorts the labels, which mixed types defeat
            exog_re=pd.DataFrame(exog_re, columns=re_names),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; check result_.converged
            kwargs = {"reml": self.reml}
            if self.method is not None:
                kwargs["method"] = self.method
            self.result_ = model.fit(**kwargs)
        self.fe_params_ = self.result_.fe_params
        try:
            blups = pd.DataFrame(self.result_.random_effects).T
        except ValueError:  # singular random-effects covariance: every BLUP is shrunk to 0
            blups = pd.DataFrame(0.0, index=range(len(self.groups_)), columns=re_names)
        blups = blups.reindex(index=range(len(self.groups_)), columns=re_names)
        self.random_effects_ = blups.set_axis(pd.Index(self.groups_, name="group"), axis=0)
        self.random_effect_sd_ = pd.Series(np.sqrt(np.diag(np.asarray(self.result_.cov_re))), index=re_names)
        self.residual_sd_ = float(np.sqrt(self.result_.scale))
        return self

    def predict(self, X, *, groups=None) -> np.ndarray:
        """Fixed effects + BLUPs for seen clusters; fixed effects only (with a warning) otherwise."""
        Xa = self._check_X(X, reset=False)
        exog, exog_re = self._designs(Xa)
        pred = exog @ self.fe_params_.to_numpy()
        codes, seen = self._seen(groups, len(Xa))
        b = self.random_effects_.to_numpy()
        pred[seen] += (exog_re[seen] * b[codes[seen]]).sum(1)
        return pred


class BayesMixedGLMClassifier(BinaryClassifierMixin, ClassifierMixin, _StatsmodelsBase):
    """Logistic mixed model with a random intercept (statsmodels ``BinomialBayesMixedGLM.fit_vb``).

    Parameters
    ----------
    vcp_p : float, default=1.0
        Prior s.d. of the log random-intercept s.d.
    fe_p : float, default=2.0
        Prior s.d. of the fixed effects.
    standardize : bool, default=True
        Standardize the features inside (the fixed-effect prior is then on a common scale).
    random_state : int, optional
        Seeds the random start of the variational fit (``None``: fresh entropy).

    Attributes
    ----------
    result_ : statsmodels BayesMixedGLMResults
    fe_mean_ : Series, posterior means of the fixed effects (standardized features)
    random_effects_ : DataFrame (clusters x ["intercept"]) of posterior-mean intercepts
    random_effect_sd_ : Series, posterior-mean estimate of the random-intercept s.d.
    classes_
    """

    _parameter_constraints = {
        "vcp_p": [Interval(Real, 0, None, closed="neither")],
        "fe_p": [Interval(Real, 0, None, closed="neither")],
        "standardize": [Options(True, False)],
        "random_state": [Options(None), Interval(Integral, 0, None), Instance(np.random.Generator)],
    }

    def __init__(
        self, vcp_p: float = 1.0, *, fe_p: float = 2.0, standardize: bool = True, random_state: int | None = None
    ) -> None:
        self.vcp_p = vcp_p
        self.fe_p = fe_p
        self.standardize = standardize
        self.random_state = random_state

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), binary labels ``y`` (n,) and cluster labels ``groups`` (n,)."""
        from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

        Xa, enc, codes = self._check_fit(X, y, groups, classifier=True)
        names = self.names_
        self.scaler_ = StandardScaler().fit(Xa) if self.standardize else None
        Xs = self.scaler_.transform(Xa) if self.scaler_ is not None else Xa
        exog_vc = sp.csr_matrix(
            (np.ones(len(codes)), (np.arange(len(codes)), codes)),
            shape=(len(codes), len(self.groups_)),
        )
        model = BinomialBayesMixedGLM(
            enc.astype(float),
            np.column_stack([np.ones(len(Xs)), Xs]),
            exog_vc,
            np.zeros(len(self.groups_), dtype=int),
            vcp_p=self.vcp_p,
            fe_p=self.fe_p,
            fep_names=["Intercept", *names],
            vcp_names=["group"],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.result_ = model.fit_vb(rng=check_random_state(self.random_state))  # its start is random
        self.fe_mean_ = pd.Series(self.result_.fe_mean, index=["Intercept", *names])
        self.random_effects_ = pd.DataFrame(
            {"intercept": self.result_.vc_mean},
            index=pd.Index(self.groups_, name="group"),
        )
        self.random_effect_sd_ = pd.Series({"intercept": float(np.exp(self.result_.vcp_mean[0]))})
        return self

    def decision_function(self, X, *, groups=None) -> np.ndarray:
        """Logit: fixed effects + posterior-mean intercept for seen clusters (none, with a warning, otherwise)."""
        Xa = self._check_X(X, reset=False)
        Xs = self.scaler_.transform(Xa) if self.scaler_ is not None else Xa
        logit = self.fe_mean_.iloc[0] + Xs @ self.fe_mean_.iloc[1:].to_numpy()
        codes, seen = self._seen(groups, len(Xa))
        logit[seen] += self.random_effects_["intercept"].to_numpy()[codes[seen]]
        return logit
