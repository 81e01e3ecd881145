"""How much of a target's variation lies between clusters: the intraclass correlation.

The intraclass correlation (ICC) of a random-intercept model
``y_ij = x_ij'β + u_j + e_ij``, ``u_j ~ N(0, τ²)``, ``e_ij ~ N(0, σ²)`` is

.. math::  \\rho = \\frac{\\tau^2}{\\tau^2 + \\sigma^2},

the share of the (residual) variance that is shared by the samples of a cluster, and the
correlation of two samples of the same cluster. ``ρ ≈ 0`` says that the clustering does
not matter for ``y``; a common rule of thumb treats ``ρ ≥ 0.05`` as worth modelling.

* ``method="linear"`` fits statsmodels' ``MixedLM`` (REML) and reads τ² and σ² from it.
  For balanced data with a between-cluster mean square above the within one, REML gives
  the one-way ANOVA estimates ``σ² = MSW`` and ``τ² = (MSB − MSW) / m`` exactly. For a 0/1
  target this is the ICC on the observed (probability) scale.
* ``method="logistic"`` fits statsmodels' ``BinomialBayesMixedGLM`` (variational Bayes, a
  random intercept on the logit scale) and returns the latent-scale ICC
  ``τ² / (τ² + π²/3)``: ``π²/3`` is the variance of the standard logistic distribution of
  the latent residual (Snijders & Bosker, *Multilevel Analysis*, 2nd ed., §17.2).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from perslib._core.validation import check_array, check_consistent_length, check_groups, check_random_state

__all__ = ["IntraclassCorrelation", "intraclass_correlation"]

#: Variance of the standard logistic distribution: the latent residual of a logit model.
LOGISTIC_RESIDUAL_VARIANCE = math.pi**2 / 3


@dataclass(frozen=True)
class IntraclassCorrelation:
    """The result of :func:`intraclass_correlation`.

    Attributes
    ----------
    icc : float
        ``between_variance / (between_variance + within_variance)``, in [0, 1].
    between_variance : float
        τ², the variance of the random intercepts.
    within_variance : float
        σ², the residual variance (``π²/3`` on the latent logistic scale).
    n_clusters, n_samples : int
    method : str
        ``"linear"`` or ``"logistic"``.
    conditional : bool
        True when fixed effects ``X`` were adjusted for (the residual ICC).
    converged : bool
        Whether the mixed model's optimiser reported convergence.
    """

    icc: float
    between_variance: float
    within_variance: float
    n_clusters: int
    n_samples: int
    method: str
    conditional: bool
    converged: bool


def intraclass_correlation(
    y: Any,
    groups: Any,
    *,
    X: Any = None,
    method: str = "linear",
    random_state: Any = None,
) -> IntraclassCorrelation:
    """The intraclass correlation of ``y`` within ``groups``, from a random-intercept mixed model.

    Parameters
    ----------
    y : array-like of shape (n,)
        Target: numbers for ``method="linear"``, two classes for ``"logistic"`` (the larger
        of the two sorted values counts as 1, as scikit-learn's ``classes_[1]``).
    groups : array-like of shape (n,)
        Cluster label of each sample; at least two clusters.
    X : array-like of shape (n, p), optional
        Fixed effects to adjust for (the conditional, or residual, ICC). Without it the
        model has an intercept only.
    method : {"linear", "logistic"}, default="linear"
        ``MixedLM`` (REML) on ``y``, or a logistic random-intercept model with the
        latent-scale ICC; see the module docstring.
    random_state : int, numpy Generator or None
        Seeds the random start of the variational fit (``"logistic"`` only).

    Returns
    -------
    IntraclassCorrelation

    Raises
    ------
    ValueError
        For NaN in ``y`` or ``X``, missing cluster labels, fewer than two clusters, a
        logistic target without exactly two classes, inputs of different lengths or an
        unknown ``method``.
    """
    if method not in ("linear", "logistic"):
        raise ValueError(f"method must be 'linear' or 'logistic', got {method!r}")
    g = check_groups(groups)
    codes, uniques = pd.factorize(pd.Series(g, dtype=object), sort=False)
    if len(uniques) < 2:
        raise ValueError(f"groups must hold at least 2 clusters for an intraclass correlation, got {len(uniques)}")
    if method == "linear":
        ya = check_array(y, "y", ndim=1)
    else:
        raw = np.asarray(y)
        if raw.ndim != 1 or pd.isna(pd.Series(raw, dtype=object)).any():
            raise ValueError("y must be 1-dimensional without missing values")
        classes = np.unique(raw)
        if len(classes) != 2:
            raise ValueError(f"y must hold exactly 2 classes for method='logistic', got {len(classes)}")
        ya = (raw == classes[1]).astype(np.float64)
    exog = np.ones((len(ya), 1))
    if X is not None:
        Xa = check_array(X, "X", ndim=2)
        check_consistent_length(X=Xa, y=ya)
        exog = np.column_stack([exog, Xa])
    check_consistent_length(y=ya, groups=g)
    if method == "linear":
        tau2, sigma2, converged = _linear(ya, exog, codes)
    else:
        tau2, sigma2, converged = _logistic(ya, exog, codes, len(uniques), random_state)
    total = tau2 + sigma2
    icc = float(tau2 / total) if total > 0 else 0.0
    return IntraclassCorrelation(
        icc=min(max(icc, 0.0), 1.0),
        between_variance=float(tau2),
        within_variance=float(sigma2),
        n_clusters=int(len(uniques)),
        n_samples=int(len(ya)),
        method=method,
        conditional=X is not None,
        converged=bool(converged),
    )


def _linear(y: np.ndarray, exog: np.ndarray, codes: np.ndarray) -> tuple[float, float, bool]:
    import statsmodels.api as sm

    model = sm.MixedLM(y, exog, groups=codes, exog_re=np.ones((len(y), 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary and convergence chatter; `converged` reports it
        result = model.fit(reml=True)
    tau2 = float(np.asarray(result.cov_re).reshape(-1)[0])
    return max(tau2, 0.0), float(result.scale), bool(result.converged)


def _logistic(y, exog, codes, n_clusters: int, random_state) -> tuple[float, float, bool]:
    import scipy.sparse as sp
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    design = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), n_clusters))
    # unit-scale columns: the fixed-effect prior N(0, fe_p²) then means the same for every column
    scale = exog.std(axis=0)
    scale[0] = 1.0
    scale[scale == 0] = 1.0
    centered = exog - np.r_[0.0, exog[:, 1:].mean(axis=0)] if exog.shape[1] > 1 else exog
    model = BinomialBayesMixedGLM(y, centered / scale, design, np.zeros(n_clusters, dtype=int), vcp_p=1.0, fe_p=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit_vb(rng=check_random_state(random_state))
    tau = float(np.exp(result.vcp_mean[0]))
    converged = bool(getattr(result.optim_retvals, "success", True))
    return tau**2, LOGISTIC_RESIDUAL_VARIANCE, converged
