"""Interpretation of ARMED models and their baselines.

* :func:`feature_importance`: mean absolute input gradient of the fixed-effects
  prediction, random effects switched off (z = 0), on standardized inputs.
* :func:`random_slope_spread`: the learned inter-cluster spread of every random effect.
* :func:`intercept_prevalence_correlation`: how well the learned random intercepts follow
  each cluster's class prevalence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from perslib._core.validation import check_array, check_groups
from perslib.mlp import MLPClassifier, MLPRegressor

__all__ = ["feature_importance", "intercept_prevalence_correlation", "random_slope_spread"]


def _fe_function(model):
    """(callable on standardized float tensor -> FE output, scaler, device, names, kind)."""
    check_is_fitted(model)
    names = getattr(model, "feature_names_in_", None)
    p = model.n_features_in_
    names = list(names) if names is not None else [f"x{j}" for j in range(p)]
    if hasattr(model, "fixed_effects_forward"):  # ARMEDClassifier / ARMEDRegressor
        return (
            model.fixed_effects_forward,
            model.scaler_,
            model.device_,
            names,
            model._classifier,
        )
    if isinstance(model, (MLPClassifier, MLPRegressor)):
        if isinstance(model, MLPClassifier) and len(model.classes_) != 2:
            raise ValueError("feature_importance supports binary classifiers and regressors")
        return (
            (lambda x: model.model_(x)[:, 0]),
            model.scaler_,
            model.device_,
            names,
            isinstance(model, MLPClassifier),
        )
    inner = getattr(model, "fixed_effects_estimator", None)
    if inner is not None:  # e.g. the cluster-input MLP: its network with the cluster part at zero
        return inner()
    raise TypeError(f"feature_importance does not know how to differentiate a {type(model).__name__}")


def feature_importance(model, X, *, output: str = "proba") -> pd.Series:
    """Mean absolute gradient of the fixed-effects prediction w.r.t. each input.

    Random effects are switched off (z = 0), so only the population (FE) part is
    measured. Gradients are taken w.r.t. the *standardized* inputs (one unit = one
    training standard deviation), so features are comparable; the output is the
    probability (``output="proba"``) or logit (``"logit"``) for classifiers and the
    model-scale (standardized) prediction for regressors. Works for the ARMED estimators
    and their baselines, and for :class:`perslib.mlp.MLPClassifier`/``MLPRegressor``.

    Returns
    -------
    pandas.Series indexed by feature name.
    """
    if output not in ("proba", "logit"):
        raise ValueError(f"output must be 'proba' or 'logit', got {output!r}")
    fn, scaler, device, names, is_clf = _fe_function(model)
    Xa = check_array(X, "X", ndim=2)
    if Xa.shape[1] != len(names):
        raise ValueError(f"X has {Xa.shape[1]} features, but the model was fitted with {len(names)}")
    if scaler is not None:
        Xa = scaler.transform(Xa)
    x = torch.as_tensor(Xa, dtype=torch.float32, device=device).requires_grad_(True)
    module = getattr(model, "net_", None)
    module = module if module is not None else getattr(model, "model_", None)
    if module is not None:
        module.eval()
    out = fn(x)
    if is_clf and output == "proba":
        out = torch.sigmoid(out)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return pd.Series(
        grad.abs().mean(0).detach().cpu().numpy().astype(np.float64),
        index=names,
        name="importance",
    )


def random_slope_spread(model) -> pd.DataFrame:
    """Inter-cluster spread of each random effect of a fitted ARMED model.

    Columns: ``empirical_sd`` (s.d. across clusters of the posterior means) and
    ``prior_sd`` (the learned prior scale, i.e. the estimated inter-cluster s.d.).
    """
    check_is_fitted(model, "random_effects_")
    return pd.DataFrame(
        {
            "empirical_sd": model.random_effects_.std(ddof=1),
            "prior_sd": model.random_effect_sd_,
        }
    )


def intercept_prevalence_correlation(model, y, groups) -> float:
    """Pearson correlation between the learned random intercepts and each cluster's class prevalence.

    ``y`` and ``groups`` are the (training) labels from which each cluster's share of the
    positive class (``classes_[1]``) is computed.
    """
    check_is_fitted(model, "random_effects_")
    if "intercept" not in model.random_effects_:
        raise ValueError("the model has no random intercept")
    y = np.asarray(y)
    g = check_groups(groups, len(y))
    positive = (y == model.classes_[1]).astype(float) if hasattr(model, "classes_") else y.astype(float)
    prevalence = pd.Series(positive).groupby(pd.Series(g, dtype=object)).mean()
    common = [k for k in model.random_effects_.index if k in prevalence.index]
    a = model.random_effects_.loc[common, "intercept"].to_numpy(float)
    b = prevalence.loc[common].to_numpy(float)
    return float(np.corrcoef(a, b)[0, 1])
