"""GPBoost baselines: tree boosting for the fixed effects plus a grouped random intercept.

GPBoost (Sigrist, JMLR 2022; ``pip install gpboost``, optional extra ``perslib[peers]``)
fits ``F(x) + b_cluster`` where ``F`` is a boosted tree ensemble and ``b`` a Gaussian
random intercept per cluster whose variance is estimated along with the trees. It is
what many users pick for clustered tabular data, so the ARMED benchmark reports it next
to the mixed models and networks.

* :class:`GPBoostRegressor` — Gaussian likelihood; predicts ``F(x) + E[b | data]``.
* :class:`GPBoostClassifier` — binary, ``bernoulli_logit`` likelihood; its
  ``decision_function`` is the logit ``F(x) + E[b | data]`` and ``predict_proba`` the
  logistic of that logit (the plug-in of the posterior mean, as
  :class:`~perslib.armed.BayesMixedGLMClassifier` does). GPBoost's own
  ``pred_latent=False`` response mean instead averages the probability over the
  posterior of ``b``; the two differ slightly for small clusters.

Samples of clusters not seen in training (or all samples when ``groups`` is None) get
the fixed effects ``F(x)`` only — the random intercept's prior mean, 0 — with a
``UserWarning`` that counts them, like the statsmodels baselines.
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from perslib._core.estimator import BinaryClassifierMixin, standardize_target
from perslib._core.validation import Instance, Interval, Options, check_random_state
from perslib.armed._baselines import _StatsmodelsBase

__all__ = ["GPBoostClassifier", "GPBoostRegressor"]


def _import_gpboost():
    try:
        with warnings.catch_warnings():  # gpboost imports optuna, whose tqdm.auto warns in a kernel without ipywidgets
            warnings.filterwarnings("ignore", message="IProgress not found")
            import gpboost
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            'GPBoostClassifier / GPBoostRegressor need the optional package gpboost: pip install "perslib[peers]" '
            '(or pip install "gpboost>=1.5")'
        ) from err
    return gpboost


class _GPBoostBase(_StatsmodelsBase):
    """Shared fit / predict of the GPBoost wrappers (not public)."""

    _likelihood = "gaussian"
    _unsaved = ("booster_", "gp_model_")  # gpboost objects; ``model_string_`` rebuilds the booster

    _parameter_constraints = {
        "num_boost_round": [Interval(Integral, 1, None)],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_depth": [Interval(Integral, 1, None), Options(-1)],
        "min_data_in_leaf": [Interval(Integral, 1, None)],
        "n_jobs": [Options(None), Interval(Integral, 1, None)],
        "random_state": [Options(None), Interval(Integral, 0, None), Instance(np.random.Generator)],
        "verbose": [Options(True, False)],
    }

    def __init__(
        self,
        num_boost_round: int = 200,
        *,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_data_in_leaf: int = 20,
        n_jobs: int | None = None,
        random_state: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.num_boost_round = num_boost_round
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_data_in_leaf = min_data_in_leaf
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _boost_params(self, seed: int) -> dict:
        params = {
            "learning_rate": float(self.learning_rate),
            "max_depth": int(self.max_depth),
            "min_data_in_leaf": int(self.min_data_in_leaf),
            "seed": seed,
            "deterministic": True,
            "verbose": 1 if self.verbose else -1,
        }
        if self.max_depth > 0:  # LightGBM's default of 31 leaves exceeds a depth-d tree's 2^d
            params["num_leaves"] = int(min(2**self.max_depth, 131072))
        if self.n_jobs is not None:
            params["num_threads"] = int(self.n_jobs)
        return params

    def _fit_gpboost(self, Xa: np.ndarray, target: np.ndarray, codes: np.ndarray, scale: float = 1.0):
        gpb = _import_gpboost()
        seed = int(check_random_state(self.random_state).integers(2**31 - 1))
        # an explicit thread count (None: every core, gpboost's default) keeps gpboost from
        # printing its thread-count notice
        threads = int(self.n_jobs) if self.n_jobs is not None else max(1, os.cpu_count() or 1)
        gp_kwargs = {"group_data": codes, "likelihood": self._likelihood, "num_parallel_threads": threads}
        self.gp_model_ = gpb.GPModel(**gp_kwargs)
        self.booster_ = gpb.train(
            params=self._boost_params(seed),
            train_set=gpb.Dataset(Xa, target.astype(float), free_raw_data=False),
            gp_model=self.gp_model_,
            num_boost_round=int(self.num_boost_round),
        )
        self.model_string_ = self.booster_.model_to_string()
        cov = self.gp_model_.get_cov_pars()
        cov = dict(zip(cov.columns, np.asarray(cov).ravel()))
        self.random_effect_sd_ = pd.Series({"intercept": float(np.sqrt(cov["Group_1"])) * scale})
        if "Error_var" in cov:
            self.residual_sd_ = float(np.sqrt(cov["Error_var"])) * scale
        # one posterior mean per cluster: predict at one training row of each cluster
        first = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
        re = np.asarray(
            self.booster_.predict(data=Xa[first], group_data_pred=codes[first], predict_var=False, pred_latent=True)[
                "random_effect_mean"
            ],
            dtype=np.float64,
        )
        self.random_effects_ = pd.DataFrame(
            {"intercept": re * scale},
            index=pd.Index(self.groups_, name="group"),
        )
        return self

    def __getstate__(self):
        """Pickle without the gpboost objects (ctypes handles); ``model_string_`` rebuilds the booster."""
        state = super().__getstate__()
        for attr in self._unsaved:
            if attr in state:
                state[attr] = None
        return state

    def _booster(self):
        check_is_fitted(self, "model_string_")
        if getattr(self, "booster_", None) is None:  # loaded with perslib.load: rebuild from the string
            self.booster_ = _import_gpboost().Booster(model_str=self.model_string_, silent=not self.verbose)
        return self.booster_

    def _latent(self, X, groups) -> np.ndarray:
        """Fixed effects + the posterior-mean intercept of seen clusters, shape (n,)."""
        Xa = self._check_X(X, reset=False)
        booster = self._booster()
        codes, seen = self._seen(groups, len(Xa))
        pred = booster.predict(
            data=Xa,
            group_data_pred=np.where(seen, codes, -1),  # -1: a level gpboost never saw (prior mean 0)
            gp_coords_pred=None,
            predict_var=False,
            pred_latent=True,
        )
        out = np.asarray(pred["fixed_effect"], dtype=np.float64).copy()
        out[seen] += np.asarray(pred["random_effect_mean"], dtype=np.float64)[seen]
        return out

    def _fixed(self, X) -> np.ndarray:
        Xa = self._check_X(X, reset=False)
        return np.asarray(self._booster().predict(data=Xa, ignore_gp_model=True, pred_latent=True), dtype=np.float64)


class GPBoostRegressor(RegressorMixin, _GPBoostBase):
    """GPBoost regressor: boosted trees + a Gaussian random intercept per cluster (``gaussian`` likelihood).

    Parameters
    ----------
    num_boost_round : int, default=200
        Boosting iterations.
    learning_rate : float, default=0.05
    max_depth : int, default=3
        Depth of each tree (``-1``: unlimited); ``num_leaves`` is set to ``2**max_depth``.
    min_data_in_leaf : int, default=20
    n_jobs : int, optional
        Threads for the trees and the GP model (gpboost's default, all cores, when None).
    random_state : int, optional
        Seeds gpboost (``None``: fresh entropy). With a seed the fit is deterministic.
    verbose : bool, default=False
        gpboost's own messages.
    standardize : bool, default=True
        Fit on ``(y - mean) / s.d.`` and scale back (``y_mean_``, ``y_scale_``). gpboost's
        Gaussian boosting steps are residuals divided by the error variance, so without it
        the reach of ``num_boost_round`` x ``learning_rate`` depends on the units of ``y``
        (on MathAchieve, s.d. 6.9, 200 rounds at 0.05 leave the trees far from converged:
        held-out R² 0.16 against 0.21 standardized).

    Attributes
    ----------
    booster_ : gpboost.Booster
    gp_model_ : gpboost.GPModel
    model_string_ : str, the booster with its GP model as text (what ``save`` keeps)
    random_effects_ : DataFrame (clusters x ["intercept"]), posterior-mean intercepts
    random_effect_sd_ : Series, estimated s.d. of the random intercept
    residual_sd_ : float, estimated s.d. of the error term
    y_mean_, y_scale_ : float, the target's standardization (0 and 1 without it)
    groups_ : ndarray (n_clusters,), the training clusters
    n_features_in_ : int
    """

    _likelihood = "gaussian"
    _parameter_constraints = {**_GPBoostBase._parameter_constraints, "standardize": [Options(True, False)]}

    def __init__(
        self,
        num_boost_round: int = 200,
        *,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_data_in_leaf: int = 20,
        n_jobs: int | None = None,
        random_state: int | None = None,
        verbose: bool = False,
        standardize: bool = True,
    ) -> None:
        super().__init__(
            num_boost_round,
            learning_rate=learning_rate,
            max_depth=max_depth,
            min_data_in_leaf=min_data_in_leaf,
            n_jobs=n_jobs,
            random_state=random_state,
            verbose=verbose,
        )
        self.standardize = standardize

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), ``y`` (n,) and cluster labels ``groups`` (n,)."""
        Xa, y, codes = self._check_fit(X, y, groups, classifier=False)
        target, self.y_mean_, self.y_scale_ = standardize_target(y, self.standardize)
        return self._fit_gpboost(Xa, target, codes, scale=self.y_scale_)

    def predict(self, X, *, groups=None) -> np.ndarray:
        """``F(x)`` + posterior-mean intercept for seen clusters; ``F(x)`` only (with a warning) otherwise; (n,)."""
        return self._latent(X, groups) * self.y_scale_ + self.y_mean_

    def fixed_effects(self, X) -> np.ndarray:
        """The trees' prediction ``F(x)`` alone (no random effect, y units), shape (n,)."""
        return self._fixed(X) * self.y_scale_ + self.y_mean_


class GPBoostClassifier(BinaryClassifierMixin, ClassifierMixin, _GPBoostBase):
    """GPBoost binary classifier: boosted trees + a random intercept per cluster (``bernoulli_logit``).

    Parameters
    ----------
    num_boost_round : int, default=200
    learning_rate : float, default=0.05
    max_depth : int, default=3
    min_data_in_leaf : int, default=20
    n_jobs : int, optional
    random_state : int, optional
    verbose : bool, default=False
        As :class:`GPBoostRegressor`.

    Attributes
    ----------
    booster_, gp_model_, model_string_, random_effects_ (logit scale), random_effect_sd_,
    groups_, n_features_in_
        As :class:`GPBoostRegressor` (no ``residual_sd_``).
    classes_ : ndarray (2,)
    """

    _likelihood = "bernoulli_logit"

    def fit(self, X, y, *, groups=None):
        """Fit on ``X`` (n, p), binary labels ``y`` (n,) and cluster labels ``groups`` (n,)."""
        Xa, enc, codes = self._check_fit(X, y, groups, classifier=True)
        return self._fit_gpboost(Xa, enc, codes)

    def decision_function(self, X, *, groups=None) -> np.ndarray:
        """Logit of ``classes_[1]``, (n,): ``F(x)`` + posterior-mean intercept for seen clusters, ``F(x)`` otherwise."""
        return self._latent(X, groups)

    def fixed_effects(self, X) -> np.ndarray:
        """The trees' logit ``F(x)`` alone (no random effect), shape (n,)."""
        return self._fixed(X)
