"""Does the clustering matter? Intraclass correlations and the spread of the cluster means."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from perslib.analysis._data import ReportData
from perslib.analysis._progress import stage
from perslib.evaluation import IntraclassCorrelation, intraclass_correlation

__all__ = ["ClusteringResult", "clustering_matters"]


@dataclass
class ClusteringResult:
    """What :func:`clustering_matters` found.

    Attributes
    ----------
    icc : IntraclassCorrelation
        From a linear random-intercept model of the target (for classes: of the positive
        class's 0/1 indicator, the ICC on the probability scale), intercept only.
    icc_conditional : IntraclassCorrelation
        The same model with the features as fixed effects: what stays between clusters
        once the features are accounted for.
    icc_latent : IntraclassCorrelation or None
        Classification only: the latent-scale ICC of a logistic random-intercept model.
    cluster_means : pandas.DataFrame
        Per cluster (index), ``rows``, ``mean`` (of the target, or the positive share) and
        its 95% interval ``low``, ``high``: mean ± t · s_w / √rows, with ``s_w`` the pooled
        within-cluster standard deviation and t the 0.975 quantile of Student's t with
        n − K degrees of freedom (n rows, K clusters: the degrees of freedom of ``s_w``),
        not the normal 1.96, which is too small when rows per cluster are few.
    sd_of_means : float
        Standard deviation of the cluster means.
    sd_of_means_noise : float
        What that standard deviation would be from sampling noise alone, with no
        difference between clusters: ``sqrt(mean_k(s_w² / n_k))``, ``s_w`` the pooled
        within-cluster standard deviation.
    test : str
        ``"one-way ANOVA"`` (regression) or ``"chi-square test of independence"``.
    statistic, p_value : float
        The test of "every cluster has the same mean (class balance)".
    """

    icc: IntraclassCorrelation
    icc_conditional: IntraclassCorrelation
    icc_latent: IntraclassCorrelation | None
    cluster_means: pd.DataFrame
    sd_of_means: float
    sd_of_means_noise: float
    test: str
    statistic: float
    p_value: float


def clustering_matters(data: ReportData, *, random_state: int = 0) -> ClusteringResult:
    """Measure how much of the target's variation lies between clusters.

    Parameters
    ----------
    data : ReportData
        From :func:`perslib.analysis.prepare_data`.
    random_state : int, default=0
        Seeds the variational fit of the logistic mixed model (classification).

    Returns
    -------
    ClusteringResult
    """
    with stage("does clustering matter: intraclass correlations"):
        y, g = data.y_numeric, data.groups
        icc = intraclass_correlation(y, g)
        icc_cond = intraclass_correlation(y, g, X=data.X.to_numpy())
        latent = (
            intraclass_correlation(data.y, g, method="logistic", random_state=random_state)
            if data.task == "classification"
            else None
        )
        frame = pd.DataFrame({"y": y, "g": pd.Series(g, dtype=object)})
        by = frame.groupby("g", sort=True)["y"]
        n, mean = by.size(), by.mean()
        df = max(len(y) - len(n), 1)  # degrees of freedom of the pooled within-cluster variance
        within = float(((frame["y"] - by.transform("mean")) ** 2).sum() / df)
        se = np.sqrt(within / n)
        t = float(stats.t.ppf(0.975, df=df))
        means = pd.DataFrame({"rows": n, "mean": mean, "low": mean - t * se, "high": mean + t * se})
        means.index.name = data.group
        if data.task == "regression":
            name = "one-way ANOVA"
            statistic, p_value = stats.f_oneway(*[part.to_numpy() for _, part in by])
        else:
            name = "chi-square test of independence"
            table = pd.crosstab(frame["g"], frame["y"])
            statistic, p_value = stats.chi2_contingency(table.to_numpy())[:2]
        return ClusteringResult(
            icc=icc,
            icc_conditional=icc_cond,
            icc_latent=latent,
            cluster_means=means,
            sd_of_means=float(mean.std(ddof=1)),
            sd_of_means_noise=float(np.sqrt(np.mean(within / n))),
            test=name,
            statistic=float(statistic),
            p_value=float(p_value),
        )
