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
from perslib.evaluation import (
    corrected_summary,
    corrected_t_interval,
    cross_validate_models,
    paired_differences,
    split_ratio,
)

__all__ = ["FinalModels", "ModelComparison", "compare_models", "fit_final_models", "report_models"]

ARMED_FE = "ARMED, fixed effects only"
SETTINGS = {"seen": "clusters seen in training", "unseen": "new clusters (whole clusters held out)"}


def mixed_model_name(task: str) -> str:
    return "logistic mixed model" if task == "classification" else "linear mixed model"


def report_models(
    task: str, *, epochs: int = 100, device: str = "auto", random_state: int = 0, gpboost: bool | str = "auto"
) -> dict:
    """The models the report compares, unfitted: ``{name: estimator}``.

    The conventional MLP, the cluster-input MLP (one-hot cluster appended to the inputs),
    ARMED (random intercept and linear random slopes, adversary, z-predictor for new
    clusters), the classical random-intercept mixed model (statsmodels ``MixedLM``, or
    ``BinomialBayesMixedGLM`` for classes) and GPBoost (boosted trees with a grouped random
    intercept, 200 rounds, learning rate 0.05, depth 3); every network with the library
    defaults.

    Parameters
    ----------
    task : {"classification", "regression"}
    epochs : int, default=100
        Most training epochs of each network (early stopping usually ends sooner).
    device : str, default="auto"
    random_state : int, default=0
    gpboost : bool or "auto", default="auto"
        Include GPBoost; "auto" includes it when the ``gpboost`` package is installed
        (``pip install "perslib[peers]"``), True requires it.

    Returns
    -------
    dict of str to estimator
    """
    import importlib.util

    if gpboost not in (True, False, "auto"):
        raise ValueError(f"gpboost must be True, False or 'auto', got {gpboost!r}")
    with_gpboost = importlib.util.find_spec("gpboost") is not None if gpboost == "auto" else bool(gpboost)
    from perslib.armed import (
        ARMEDClassifier,
        ARMEDRegressor,
        BayesMixedGLMClassifier,
        ClusterInputMLPClassifier,
        ClusterInputMLPRegressor,
        GPBoostClassifier,
        GPBoostRegressor,
        MixedLMRegressor,
    )
    from perslib.mlp import MLPClassifier, MLPRegressor

    net = {"epochs": int(epochs), "device": device, "random_state": random_state}
    if task == "classification":
        models = {
            "MLP": MLPClassifier(**net),
            "cluster-input MLP": ClusterInputMLPClassifier(**net),
            "ARMED": ARMEDClassifier(**net),
            mixed_model_name(task): BayesMixedGLMClassifier(random_state=random_state),
        }
        if with_gpboost:
            models["GPBoost"] = GPBoostClassifier(random_state=random_state)
        return models
    if task == "regression":
        models = {
            "MLP": MLPRegressor(**net),
            "cluster-input MLP": ClusterInputMLPRegressor(**net),
            "ARMED": ARMEDRegressor(**net),
            mixed_model_name(task): MixedLMRegressor(),
        }
        if with_gpboost:
            models["GPBoost"] = GPBoostRegressor(random_state=random_state)
        return models
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")


@dataclass
class ModelComparison:
    """Cross-validated scores of the report's models in one setting.

    Every interval over folds is the corrected resampled t interval of Nadeau and Bengio
    (2003, :func:`perslib.evaluation.corrected_t_interval`): the variance of the mean of
    k fold scores is :math:`(1/k + n_\\text{test}/n_\\text{train})\\,s^2` and the
    multiplier the t quantile with k - 1 degrees of freedom. Fold scores share most of
    their training data, so the naive mean ± 1.96·s/√k (:func:`perslib.evaluation.mean_ci`)
    would be too narrow. The intervals are not clipped to the metric's range: with few
    folds an AUROC or accuracy interval can reach past 1.

    Attributes
    ----------
    setting : {"seen", "unseen"}
    scores : pandas.DataFrame
        Per fold, model and metric (:func:`perslib.evaluation.cross_validate_models`).
    summary : pandas.DataFrame
        Index ``(model, metric)``; ``mean``, ``low``, ``high``, ``sd``, ``n_folds``: the
        mean over folds and its corrected t interval at ``level``
        (:func:`perslib.evaluation.corrected_summary` with ``test_train_ratio``).
    metric : str
        The headline metric: ``"r2"`` or ``"auroc"``.
    metrics : list of str
        The metrics shown (headline first).
    models : list of str
        Model names in the table's order (the ARMED fixed-effects-only variant included).
    test_train_ratio : float
        Mean :math:`n_\\text{test}/n_\\text{train}` of the splits the scores come from
        (:func:`perslib.evaluation.split_ratio`).
    level : float, default=0.95
        Coverage of every interval.
    """

    setting: str
    scores: pd.DataFrame
    summary: pd.DataFrame
    metric: str
    metrics: list
    models: list
    test_train_ratio: float
    level: float = 0.95

    @classmethod
    def from_scores(
        cls,
        setting: str,
        scores: pd.DataFrame,
        splits,
        metrics: list,
        models: list,
        level: float = 0.95,
    ) -> ModelComparison:
        """Build the comparison from a score table and the splits that produced it.

        Parameters
        ----------
        setting : {"seen", "unseen"}
        scores : pandas.DataFrame
            Columns ``fold, model, metric, value`` (:func:`perslib.evaluation.cross_validate_models`).
        splits : sequence of (train, test)
            The index arrays of the folds; they give ``test_train_ratio``.
        metrics : list of str
            The metrics shown, headline first.
        models : list of str
            Model names in display order.
        level : float, default=0.95

        Returns
        -------
        ModelComparison
        """
        if setting not in SETTINGS:
            raise ValueError(f"setting must be 'seen' or 'unseen', got {setting!r}")
        ratio = split_ratio(splits)
        return cls(
            setting=setting,
            scores=scores,
            summary=corrected_summary(scores, ratio, level),
            metric=metrics[0],
            metrics=list(metrics),
            models=list(models),
            test_train_ratio=ratio,
            level=level,
        )

    @property
    def title(self) -> str:
        """The setting in words: "clusters seen in training" or "new clusters (...)"."""
        return SETTINGS[self.setting]

    @property
    def n_folds(self) -> int:
        """Number of folds (k)."""
        return int(self.scores["fold"].nunique())

    def table(self) -> pd.DataFrame:
        """Models (rows) x (metric, mean / low / high) (columns); corrected t intervals at ``level``."""
        t = self.summary.loc[(slice(None), self.metrics), ["mean", "low", "high"]].unstack("metric")
        t = t.swaplevel(axis=1).reindex(columns=pd.MultiIndex.from_product([self.metrics, ["mean", "low", "high"]]))
        return t.loc[self.models]

    def means(self, metric: str | None = None) -> pd.Series:
        """Mean score over folds per model."""
        return self.summary.xs(metric or self.metric, level="metric")["mean"].reindex(self.models)

    def difference(self, a: str, b: str, metric: str | None = None) -> tuple[float, float, float]:
        """Mean of the fold-wise differences ``a − b`` with its corrected paired t interval.

        The two models were scored on the same folds, so the differences are paired; the
        interval is :func:`perslib.evaluation.corrected_t_interval` of the k differences
        with ``test_train_ratio`` and ``level`` (Nadeau and Bengio's corrected paired t).

        Returns
        -------
        (mean, low, high) : tuple of float
            ``low`` and ``high`` are NaN with fewer than two folds.
        """
        metric = metric or self.metric
        s = self.scores[self.scores["metric"] == metric].pivot(index="fold", columns="model", values="value")
        for name in (a, b):
            if name not in s.columns:
                raise ValueError(f"model {name!r} has no {metric!r} scores (models: {list(s.columns)})")
        diff = (s[a] - s[b]).to_numpy(dtype=float)
        if len(diff) < 2:
            return float(diff.mean()), np.nan, np.nan
        return corrected_t_interval(diff, self.test_train_ratio, self.level)

    def differences(self, reference: str = "MLP", metric: str | None = None) -> pd.DataFrame:
        """Every other model minus ``reference``, fold by fold, with corrected paired intervals.

        :func:`perslib.evaluation.paired_differences` on this comparison's scores, ratio
        and level; rows in ``models`` order.

        Returns
        -------
        pandas.DataFrame
            Index ``model``; ``mean_diff``, ``low``, ``high``, ``excludes_zero`` and one
            ``fold <f>`` column per fold.
        """
        metric = metric or self.metric
        others = [m for m in self.models if m != reference]
        return paired_differences(self.scores, metric, reference, self.test_train_ratio, self.level, models=others)


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
        Intervals over folds are corrected resampled t intervals (Nadeau and Bengio) with
        the test/train ratio of these splits (``test_train_ratio``).
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
    return ModelComparison.from_scores(setting, scores, splits, metrics, [*models, ARMED_FE])


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
