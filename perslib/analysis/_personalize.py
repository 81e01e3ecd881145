"""Personalized regression on the report's data: which covariates personalize, how the models vary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import accuracy_score, adjusted_rand_score, r2_score, silhouette_score

from perslib._core.runtime import torch_threads
from perslib.analysis._data import ReportData
from perslib.analysis._progress import stage

__all__ = ["PersonalizationResult", "model_clusters", "personalize"]


@dataclass
class PersonalizationResult:
    """What personalized regression says about the data.

    Attributes
    ----------
    model : PersonalizedRegressor or PersonalizedClassifier
        Fitted on every row (``rank="auto"``), with the covariates as ``covariates=``.
    weights : pandas.Series
        The learned covariate metric's shares (sum 1), largest first: which covariates
        decide whose models are alike.
    coefficients : pandas.DataFrame of shape (n, p + 1)
        Each sample's coefficients (user's units) and ``intercept``.
    population : pandas.Series of shape (p + 1,)
        The population model's coefficients and intercept.
    spread : pandas.DataFrame
        Per coefficient: ``population``, and over samples ``mean``, ``sd``, ``q05``,
        ``q95``, all per one standard deviation of the feature (``coef × sd(x)``), so that
        rows are comparable; the intercept in the target's (logit's) units.
    labels : numpy.ndarray of shape (n,)
        Group of models of each sample (:func:`model_clusters`).
    silhouette : float
        Silhouette of those groups (on the standardized coefficients).
    profiles : pandas.DataFrame
        Per group of models: ``rows`` and the mean of each standardized coefficient.
    agreement : float
        Adjusted Rand index between the groups of models and the data's clusters (0: the
        models do not follow the clusters, 1: one group per cluster).
    heldout_score, population_score : float
        R² (regression) or accuracy (classification) on the samples held out of training
        for early stopping, whose models are predicted from their covariates alone, and of
        the population model on the same samples. They also chose the rank, so the first
        is slightly optimistic.
    n_heldout : int
    """

    model: object
    weights: pd.Series
    coefficients: pd.DataFrame
    population: pd.Series
    spread: pd.DataFrame
    labels: np.ndarray
    silhouette: float
    profiles: pd.DataFrame
    agreement: float
    heldout_score: float
    population_score: float
    n_heldout: int


def model_clusters(coefficients, *, max_clusters: int = 6, random_state: int = 0, sample: int = 2000):
    """Group samples by their models: k-means on standardized coefficients, k by silhouette.

    Parameters
    ----------
    coefficients : array-like of shape (n, d)
    max_clusters : int, default=6
        k is chosen among 2 … ``max_clusters`` by the silhouette.
    random_state : int, default=0
        Seeds k-means and the subsample the silhouette is computed on.
    sample : int, default=2000
        Rows the silhouette is computed on (all when fewer).

    Returns
    -------
    labels : numpy.ndarray of shape (n,), int
        Groups numbered by size, 0 the largest.
    silhouette : float
    """
    Z = np.asarray(coefficients, dtype=np.float64)
    sd = Z.std(axis=0)
    Z = (Z[:, sd > 0] - Z[:, sd > 0].mean(axis=0)) / sd[sd > 0]
    n = len(Z)
    if Z.shape[1] == 0 or n < 4:
        return np.zeros(n, dtype=int), float("nan")
    rng = np.random.default_rng(random_state)
    idx = rng.choice(n, size=min(n, sample), replace=False)
    best = None
    for k in range(2, min(max_clusters, n - 1) + 1):
        labels = KMeans(k, n_init=4, random_state=random_state).fit_predict(Z)
        if np.unique(labels[idx]).size < 2:
            continue
        score = float(silhouette_score(Z[idx], labels[idx]))
        if best is None or score > best[1] + 1e-12:
            best = (labels, score)
    if best is None:
        return np.zeros(n, dtype=int), float("nan")
    labels, score = best
    order = pd.Series(labels).value_counts().index  # renumber by size
    return pd.Series(labels).map({old: new for new, old in enumerate(order)}).to_numpy(), score


def personalize(data: ReportData, *, device: str = "auto", random_state: int = 0) -> PersonalizationResult:
    """Fit personalized regression with the data's covariates and summarize its models.

    Parameters
    ----------
    data : ReportData
        With ``covariates``.
    device : str, default="auto"
    random_state : int, default=0

    Returns
    -------
    PersonalizationResult
    """
    from perslib.personalized import PersonalizedClassifier, PersonalizedRegressor

    if data.U is None:
        raise ValueError("personalize needs covariates: pass covariates= to prepare_data")
    cls = PersonalizedClassifier if data.task == "classification" else PersonalizedRegressor
    with stage(f"personalized regression with covariates {', '.join(data.covariates)}"), torch_threads(1):
        model = cls(device=device, random_state=random_state).fit(data.X, data.y, covariates=data.U)
        names = list(data.X.columns)
        coef = pd.DataFrame(model.coef_, columns=names).assign(intercept=model.intercept_)
        population = pd.Series([*model.population_coef_, model.population_intercept_], index=[*names, "intercept"])
        x_sd = pd.Series([*data.X.std(ddof=0).to_numpy(), 1.0], index=[*names, "intercept"])
        scaled = coef * x_sd
        spread = pd.DataFrame(
            {
                "population": population * x_sd,
                "mean": scaled.mean(),
                "sd": scaled.std(ddof=1),
                "q05": scaled.quantile(0.05),
                "q95": scaled.quantile(0.95),
            }
        )
        labels, silhouette = model_clusters(scaled.to_numpy(), random_state=random_state)
        z = (scaled - scaled.mean()) / scaled.std(ddof=0).replace(0, 1)
        profiles = z.groupby(labels).mean()
        profiles.insert(0, "rows", pd.Series(labels).value_counts().sort_index())
        profiles.index.name = "group of models"
        agreement = float(adjusted_rand_score(pd.factorize(pd.Series(data.groups, dtype=object))[0], labels))
        held = np.asarray(model.heldout_, dtype=bool)
        Xh = data.X.to_numpy(dtype=np.float64)[held]
        own = model.intercept_[held] + (Xh * model.coef_[held]).sum(axis=1)
        pop = model.population_intercept_ + Xh @ model.population_coef_
        if data.task == "regression":
            yh = np.asarray(data.y, dtype=np.float64)[held]
            score, pop_score = r2_score(yh, own), r2_score(yh, pop)
        else:
            yh = np.asarray(data.y)[held]
            cl = np.asarray(model.classes_)
            score = accuracy_score(yh, cl[(own > 0).astype(int)])
            pop_score = accuracy_score(yh, cl[(pop > 0).astype(int)])
    weights = pd.Series(model.covariate_weights_, index=data.covariates, dtype=float).sort_values(ascending=False)
    return PersonalizationResult(
        model=model,
        weights=weights,
        coefficients=coef,
        population=population,
        spread=spread,
        labels=labels,
        silhouette=silhouette,
        profiles=profiles,
        agreement=agreement,
        heldout_score=float(score),
        population_score=float(pop_score),
        n_heldout=int(held.sum()),
    )
