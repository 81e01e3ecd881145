"""The report's model comparison (seen and new clusters) and the models fitted on every row."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perslib._core.runtime import torch_threads
from perslib.analysis._data import ReportData
from perslib.analysis._effects import random_effect_intervals
from perslib.analysis._progress import stage
from perslib.evaluation import cross_validate_models, mean_ci, summarize_folds

__all__ = ["FinalModels", "ModelComparison", "compare_models", "fit_final_models", "report_models"]

ARMED_FE = "ARMED, fixed effects only"
SETTINGS = {"seen": "clusters seen in training", "unseen": "new clusters (whole clusters held out)"}


def mixed_model_name(task: str) -> str:
    return "logistic mixed model" if task == "classification" else "linear mixed model"


def report_models(task: str, *, epochs: int = 100, device: str = "auto", random_state: int = 0) -> dict:
    """The four models the report compares, unfitted: ``{name: estimator}``.

    The conventional MLP, the cluster-input MLP (one-hot cluster appended to the inputs),
    ARMED (random intercept and linear random slopes, adversary, z-predictor for new
    clusters) and the classical random-intercept mixed model (statsmodels ``MixedLM``, or
    ``BinomialBayesMixedGLM`` for classes); every network with the library defaults.

    Parameters
    ----------
    task : {"classification", "regression"}
    epochs : int, default=100
        Most training epochs of each network (early stopping usually ends sooner).
    device : str, default="auto"
    random_state : int, default=0

    Returns
    -------
    dict of str to estimator
    """
    from perslib.armed import (
        ARMEDClassifier,
        ARMEDRegressor,
        BayesMixedGLMClassifier,
        ClusterInputMLPClassifier,
        ClusterInputMLPRegressor,
        MixedLMRegressor,
    )
    from perslib.mlp import MLPClassifier, MLPRegressor

    net = {"epochs": int(epochs), "device": device, "random_state": random_state}
    if task == "classification":
        return {
            "MLP": MLPClassifier(**net),
            "cluster-input MLP": ClusterInputMLPClassifier(**net),
            "ARMED": ARMEDClassifier(**net),
            mixed_model_name(task): BayesMixedGLMClassifier(random_state=random_state),
        }
    if task == "regression":
        return {
            "MLP": MLPRegressor(**net),
            "cluster-input MLP": ClusterInputMLPRegressor(**net),
            "ARMED": ARMEDRegressor(**net),
            mixed_model_name(task): MixedLMRegressor(),
        }
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")


@dataclass
class ModelComparison:
    """Cross-validated scores of the report's models in one setting.

    Attributes
    ----------
    setting : {"seen", "unseen"}
    scores : pandas.DataFrame
        Per fold, model and metric (:func:`perslib.evaluation.cross_validate_models`).
    summary : pandas.DataFrame
        Mean and 95% interval over folds (:func:`perslib.evaluation.summarize_folds`).
    metric : str
        The headline metric: ``"r2"`` or ``"auroc"``.
    metrics : list of str
        The metrics shown (headline first).
    models : list of str
        Model names in the table's order (the ARMED fixed-effects-only variant included).
    """

    setting: str
    scores: pd.DataFrame
    summary: pd.DataFrame
    metric: str
    metrics: list
    models: list

    @property
    def title(self) -> str:
        """The setting in words: "clusters seen in training" or "new clusters (...)"."""
        return SETTINGS[self.setting]

    def table(self) -> pd.DataFrame:
        """Models (rows) x (metric, mean / low / high) (columns)."""
        t = self.summary.loc[(slice(None), self.metrics), ["mean", "low", "high"]].unstack("metric")
        t = t.swaplevel(axis=1).reindex(columns=pd.MultiIndex.from_product([self.metrics, ["mean", "low", "high"]]))
        return t.loc[self.models]

    def means(self, metric: str | None = None) -> pd.Series:
        """Mean score over folds per model."""
        return self.summary.xs(metric or self.metric, level="metric")["mean"].reindex(self.models)

    def difference(self, a: str, b: str, metric: str | None = None) -> tuple[float, float, float]:
        """Mean and 95% interval over folds of the fold-wise difference ``a − b`` (same folds: paired)."""
        metric = metric or self.metric
        s = self.scores[self.scores["metric"] == metric].pivot(index="fold", columns="model", values="value")
        diff = (s[a] - s[b]).to_numpy(dtype=float)
        return mean_ci(diff) if len(diff) >= 2 else (float(diff.mean()), np.nan, np.nan)


def compare_models(
    data: ReportData,
    setting: str,
    *,
    epochs: int = 100,
    device: str = "auto",
    n_jobs: int = 1,
    random_state: int = 0,
) -> ModelComparison:
    """Cross-validate the report's models on seen clusters or on new clusters.

    ``"seen"`` uses ``data.seen_splits`` (every cluster in every training fold; ARMED and
    the mixed model use each test row's own cluster), ``"unseen"`` uses
    ``data.unseen_splits`` (whole clusters held out; ARMED predicts their memberships with
    its z-predictor, the mixed model and the cluster-input MLP fall back to their fixed
    part). ARMED's fixed-effects network alone (``z="zero"``) is scored as a variant.

    Parameters
    ----------
    data : ReportData
    setting : {"seen", "unseen"}
    epochs, device, random_state
        As in :func:`report_models`.
    n_jobs : int, default=1
        Processes fitting (fold, model) pairs; the results do not depend on it.

    Returns
    -------
    ModelComparison
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be 'seen' or 'unseen', got {setting!r}")
    models = report_models(data.task, epochs=epochs, device=device, random_state=random_state)
    splits = data.seen_splits if setting == "seen" else data.unseen_splits
    with stage(f"cross-validation on {SETTINGS[setting]}: {len(splits)} folds x {len(models)} models"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*did not converge.*")
            scores = cross_validate_models(
                models,
                data.X,
                data.y,
                data.groups,
                splits,
                task=data.task,
                variants={ARMED_FE: ("ARMED", {"z": "zero"})},
                n_jobs=n_jobs,
            )
    metrics = ["auroc", "accuracy"] if data.task == "classification" else ["r2", "mse"]
    return ModelComparison(
        setting=setting,
        scores=scores,
        summary=summarize_folds(scores),
        metric=metrics[0],
        metrics=metrics,
        models=[*models, ARMED_FE],
    )


@dataclass
class FinalModels:
    """ARMED, the MLP and the mixed model fitted on every row, and what they say.

    Attributes
    ----------
    armed, mlp, mixed : fitted estimators
    mixed_name : str
        ``"linear mixed model"`` or ``"logistic mixed model"``.
    effects : pandas.DataFrame
        ARMED's random effects per cluster with 95% posterior intervals
        (:func:`random_effect_intervals`).
    mixed_effects : pandas.DataFrame
        The mixed model's random intercepts with their intervals.
    spread : pandas.Series
        ARMED's learned spread τ (prior s.d.) of each random effect, largest first.
    importance : pandas.DataFrame
        Per encoded feature (rows): mean |gradient| of the fixed-effects prediction for ARMED
        and the MLP (:func:`perslib.armed.feature_importance`), and each model's share of
        its total (``share ARMED``, ``share MLP``).
    intercept_agreement : float
        Pearson correlation of ARMED's random intercepts with the mixed model's.
    """

    armed: object
    mlp: object
    mixed: object
    mixed_name: str
    effects: pd.DataFrame
    mixed_effects: pd.DataFrame
    spread: pd.Series
    importance: pd.DataFrame
    intercept_agreement: float


def fit_final_models(
    data: ReportData, *, epochs: int = 100, device: str = "auto", random_state: int = 0
) -> FinalModels:
    """Fit ARMED, the MLP and the mixed model on every row; read random effects and importances.

    Parameters
    ----------
    data : ReportData
    epochs, device, random_state
        As in :func:`report_models`.

    Returns
    -------
    FinalModels
    """
    from perslib.armed import feature_importance

    models = report_models(data.task, epochs=epochs, device=device, random_state=random_state)
    mixed_name = mixed_model_name(data.task)
    with stage("ARMED, MLP and mixed model on every row"), torch_threads(1):  # small nets: 1 thread is fastest
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*did not converge.*")
            armed = models["ARMED"].fit(data.X, data.y, groups=data.groups)
            mlp = models["MLP"].fit(data.X, data.y)
            mixed = models[mixed_name].fit(data.X, data.y, groups=data.groups)
        effects = random_effect_intervals(armed)
        mixed_effects = random_effect_intervals(mixed)
        imp = pd.DataFrame({"ARMED": feature_importance(armed, data.X), "MLP": feature_importance(mlp, data.X)})
        for m in ("ARMED", "MLP"):
            imp[f"share {m}"] = imp[m] / imp[m].sum()
        a = effects[effects["effect"] == "intercept"].set_index("cluster")["mean"]
        b = mixed_effects.groupby("cluster", sort=False)["mean"].first()
        agreement = float(np.corrcoef(a.to_numpy(float), b.reindex(a.index).to_numpy(float))[0, 1])
    return FinalModels(
        armed=armed,
        mlp=mlp,
        mixed=mixed,
        mixed_name=mixed_name,
        effects=effects,
        mixed_effects=mixed_effects,
        spread=armed.random_effect_sd_.sort_values(ascending=False),
        importance=imp,
        intercept_agreement=agreement,
    )
