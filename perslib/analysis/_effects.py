"""Per-cluster random effects with intervals, for ARMED and the statsmodels mixed models."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.validation import check_is_fitted

__all__ = ["random_effect_intervals"]


def random_effect_intervals(model, level: float = 0.95) -> pd.DataFrame:
    """Each cluster's random effects with a posterior interval (a caterpillar plot's table).

    * ARMED (:class:`~perslib.armed.ARMEDClassifier`, :class:`~perslib.armed.ARMEDRegressor`
      and their variants): the Gaussian posterior ``N(mu, s²)`` of each random effect
      (for the regressor after its mixed-model refit, the exact conditional posterior
      on the learned features); in units of ``y`` (regressor) or the logit (classifier).
    * :class:`~perslib.armed.MixedLMRegressor`: the BLUPs and their conditional
      standard deviations (statsmodels' ``random_effects_cov``).
    * :class:`~perslib.armed.BayesMixedGLMClassifier`: the variational posterior of each
      random intercept (logit scale).

    Parameters
    ----------
    model : fitted estimator
    level : float, default=0.95
        Coverage of the interval ``mean ± z · sd``.

    Returns
    -------
    pandas.DataFrame
        One row per (cluster, effect): columns ``cluster``, ``effect``, ``mean``, ``sd``,
        ``low``, ``high``; clusters in the model's (sorted) order.
    """
    if not (isinstance(level, float | int) and 0 < level < 1):
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    check_is_fitted(model, "random_effects_")
    effects = model.random_effects_
    if effects.shape[1] == 0:
        raise ValueError(f"{type(model).__name__} has no random effects")
    clusters = list(effects.index)
    if hasattr(model, "net_") and getattr(model.net_, "re", None) is not None:
        scale = model._out_scale()
        mean = model.net_.re.loc.detach().cpu().numpy().astype(np.float64) * scale
        sd = model.net_.re.scale.detach().cpu().numpy().astype(np.float64) * scale
    elif hasattr(model, "result_") and hasattr(model.result_, "random_effects_cov"):
        mean = effects.to_numpy(dtype=np.float64)
        covs = model.result_.random_effects_cov
        sd = np.vstack(
            [
                np.sqrt(np.clip(np.diag(np.asarray(covs[k])), 0, None)) if k in covs else np.full(mean.shape[1], np.nan)
                for k in range(len(clusters))
            ]
        )
    elif hasattr(model, "result_") and hasattr(model.result_, "vc_sd"):
        mean = effects.to_numpy(dtype=np.float64)
        sd = np.asarray(model.result_.vc_sd, dtype=np.float64)[:, None]
    else:
        raise TypeError(f"random_effect_intervals does not know the posterior of a {type(model).__name__}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    rows = pd.DataFrame(
        {
            "cluster": np.repeat(np.asarray(clusters, dtype=object), mean.shape[1]),
            "effect": np.tile(np.asarray(effects.columns, dtype=object), len(clusters)),
            "mean": mean.reshape(-1),
            "sd": sd.reshape(-1),
        }
    )
    rows["low"] = rows["mean"] - z * rows["sd"]
    rows["high"] = rows["mean"] + z * rows["sd"]
    return rows
